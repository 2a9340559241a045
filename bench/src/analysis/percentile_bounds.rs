//! Distribution-free confidence bounds for a percentile from its sample count (pure), as MLPerf LoadGen's early
//! stopping bounds its tail latency: with n samples the number below the true q-quantile is Binomial(n, q), so
//! the order statistics X(l) and X(u) bracket it with probability F(u-1) - F(l-1). The 95% interval takes the
//! largest l and smallest u with 2.5% in each tail; a bound whose rank falls outside 1..=n does not exist, and a
//! percentile without both bounds rests on too few samples.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms: about 15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let sum = C[1..].iter().enumerate().fold(C[0], |acc, (i, c)| acc + c / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = if d.abs() < TINY { TINY } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        for aa in [m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))] {
            d = 1.0 + aa * d;
            d = if d.abs() < TINY { TINY } else { d };
            c = 1.0 + aa / c;
            c = if c.abs() < TINY { TINY } else { c };
            d = 1.0 / d;
            h *= d * c;
            if aa != 0.0 && (d * c - 1.0).abs() < 1e-15 {
                return h;
            }
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// P(B <= k) for B ~ Binomial(n, p).
pub fn binomial_cdf(k: u64, n: u64, p: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    incomplete_beta((n - k) as f64, k as f64 + 1.0, 1.0 - p)
}

/// Smallest k in 0..=n with P(B <= k) >= target (n + 1 when none).
fn smallest_k_reaching(n: u64, p: f64, target: f64) -> u64 {
    let (mut lo, mut hi) = (0u64, n + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if mid <= n && binomial_cdf(mid, n, p) >= target {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// The 1-based ranks (l, u) of the order statistics that bracket the q-quantile with 95% confidence among n
/// samples; a bound is `None` where too few samples leave it outside the sample.
pub fn ranks_95(n: u64, q: f64) -> (Option<u64>, Option<u64>) {
    if n == 0 {
        return (None, None);
    }
    // Lower: the largest l with P(B <= l - 1) <= 2.5%, i.e. l - 1 = (smallest k with F(k) > 2.5%) - 1.
    let first_above = smallest_k_reaching(n, q, 0.025 + 1e-12);
    let lower = (first_above >= 1).then_some(first_above);
    // Upper: the smallest u with P(B <= u - 1) >= 97.5%.
    let upper = smallest_k_reaching(n, q, 0.975) + 1;
    (lower, (upper <= n).then_some(upper))
}

/// Fewest samples for which the q-quantile has a distribution-free 95% upper bound (368 for p99, 3688 for p99.9).
pub fn min_samples_95(q: f64) -> u64 {
    // The largest sample is an upper bound with confidence 1 - q^n >= 97.5%.
    ((0.025f64).ln() / q.ln()).ceil() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(B <= k) summed term by term, each term from logarithms (exact enough for the sizes tested).
    fn cdf_by_sum(k: u64, n: u64, p: f64) -> f64 {
        let ln_choose = |i: u64| (1..=i).map(|j| (((n - i + j) as f64) / j as f64).ln()).sum::<f64>();
        (0..=k).map(|i| (ln_choose(i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln()).exp()).sum()
    }

    #[test]
    fn the_binomial_cdf_matches_known_values() {
        // Published values: P(B <= 5 | n = 10, p = 0.5) = 0.623046875; P(B <= 0 | n = 20, p = 0.1) = 0.9^20.
        assert!((binomial_cdf(5, 10, 0.5) - 0.623_046_875).abs() < 1e-12);
        assert!((binomial_cdf(0, 20, 0.1) - 0.9f64.powi(20)).abs() < 1e-12);
        for (k, n, p) in [(360, 368, 0.99), (95, 100, 0.99), (990, 1000, 0.99), (3, 40, 0.2)] {
            assert!((binomial_cdf(k, n, p) - cdf_by_sum(k, n, p)).abs() < 1e-9, "k={k} n={n} p={p}");
        }
        assert_eq!(binomial_cdf(10, 10, 0.3), 1.0);
    }

    #[test]
    fn ranks_bracket_the_percentile_with_95_percent_confidence() {
        // p99 of 1000 samples: X(983) .. X(997), coverage F(996) - F(982) = 0.9899 - 0.0138 (tabulated).
        let (l, u) = ranks_95(1000, 0.99);
        let (l, u) = (l.unwrap(), u.unwrap());
        assert!(binomial_cdf(l - 1, 1000, 0.99) <= 0.025 && binomial_cdf(l, 1000, 0.99) > 0.025);
        assert!(binomial_cdf(u - 1, 1000, 0.99) >= 0.975 && binomial_cdf(u - 2, 1000, 0.99) < 0.975);
        assert_eq!((l, u), (983, 997));
        // The median of 100 samples: X(40) .. X(61), the textbook interval.
        assert_eq!(ranks_95(100, 0.5), (Some(40), Some(61)));
        // Too few samples: no upper bound for p99 below 368 samples, none for p99.9 below 3688.
        assert_eq!(min_samples_95(0.99), 368);
        assert_eq!(min_samples_95(0.999), 3688);
        assert!(ranks_95(367, 0.99).1.is_none());
        assert!(ranks_95(368, 0.99).1.is_some());
        assert_eq!(ranks_95(0, 0.99), (None, None));
        // Millions of samples stay fast and sane: about +-1.96 sd (356 ranks) around n q = 12,672,000.
        let (l, u) = ranks_95(12_800_000, 0.99);
        let (l, u) = (l.unwrap(), u.unwrap());
        assert!(l < 12_672_000 && u > 12_672_000 && (1300..1500).contains(&(u - l)), "{l} {u}");
    }
}
