//! Statistics across repeated runs (pure): the variance that decides whether a verdict survives a repeat lives
//! between runs, not within one (Kalibera and Jones, ISMM 2013), so every headline figure is summarised over its
//! repeats: the median, a 95% interval across repeats, and each repeat's value.
//!
//! The interval is Student's t on the logarithms of the repeats' values (a ratio of 1.2 and one of 1/1.2 are
//! equally far from 1; rates and latencies are positive and skewed), transformed back: an interval for the typical
//! (geometric-mean) value of a repeat of this configuration. Where a value is zero or negative the t interval is
//! taken on the values themselves. One repeat has no interval: it cannot tell a steady case from a noisy one.

use serde::Serialize;

/// How [`Spread::of`] builds its interval, in the words every output uses.
pub const METHOD: &str = "median of the repeats; 95% Student-t interval across repeats (on log values)";

/// Two-sided 95% quantiles of Student's t for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
    2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/// t(0.975, df); past the table, the normal quantile with a first-order correction (within 0.003).
pub fn t_quantile_975(df: usize) -> f64 {
    match df {
        0 => f64::INFINITY,
        d if d <= T_975.len() => T_975[d - 1],
        d => 1.960 + 2.4 / d as f64,
    }
}

/// A 95% interval across repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// One figure over its repeats.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Spread {
    /// Median of the repeats' values.
    pub median: f64,
    /// 95% interval across repeats (`None` with fewer than two).
    pub across: Option<Interval>,
    pub min: f64,
    pub max: f64,
    /// Each repeat's value, in repeat order.
    pub values: Vec<f64>,
}

fn median_of(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Student-t 95% interval of the mean of `xs`.
fn t_interval(xs: &[f64]) -> Interval {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t_quantile_975(xs.len() - 1) * (var / n).sqrt();
    Interval { low: mean - half, high: mean + half }
}

impl Spread {
    /// The spread of finite values (`None` when there are none).
    pub fn of(values: &[f64]) -> Option<Spread> {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return None;
        }
        let across = (finite.len() >= 2).then(|| {
            if finite.iter().all(|&v| v > 0.0) {
                let logs: Vec<f64> = finite.iter().map(|v| v.ln()).collect();
                let i = t_interval(&logs);
                Interval { low: i.low.exp(), high: i.high.exp() }
            } else {
                t_interval(&finite)
            }
        });
        Some(Spread {
            median: median_of(&finite),
            across,
            min: finite.iter().copied().fold(f64::INFINITY, f64::min),
            max: finite.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            values: finite,
        })
    }

    pub fn repeats(&self) -> usize {
        self.values.len()
    }

    /// Half the interval's width relative to the median (`None` with one repeat).
    pub fn relative_half_width(&self) -> Option<f64> {
        self.across.map(|i| (i.high - i.low) / 2.0 / self.median.abs().max(f64::MIN_POSITIVE))
    }

    /// Whether the repeats agree that the figure is above (or below) `x`: the interval across repeats excludes
    /// it on that side and every single repeat lies on that side.
    pub fn direction(&self, x: f64) -> Direction {
        match self.across {
            None => Direction::OneRepeat,
            Some(i) if i.low > x && self.min > x => Direction::Above,
            Some(i) if i.high < x && self.max < x => Direction::Below,
            Some(_) => Direction::NoConsistentDifference,
        }
    }
}

/// What the repeats say about a figure against a reference value (1 for a ratio).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Above,
    Below,
    /// The interval includes the reference, or some repeat lies on the other side.
    NoConsistentDifference,
    /// One repeat only: no interval across repeats.
    OneRepeat,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::stats::SplitMix64;

    #[test]
    fn median_interval_and_values_of_repeats() {
        let s = Spread::of(&[1.34, 1.50, 1.42, f64::NAN]).unwrap();
        assert_eq!(s.values, [1.34, 1.50, 1.42]);
        assert_eq!((s.median, s.min, s.max), (1.42, 1.34, 1.50));
        let i = s.across.unwrap();
        // exp(mean(ln) +- 4.303 * sd(ln) / sqrt(3)), by hand.
        let logs: Vec<f64> = [1.34f64, 1.50, 1.42].iter().map(|v| v.ln()).collect();
        let mean = logs.iter().sum::<f64>() / 3.0;
        let sd = (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((i.low - (mean - 4.303 * sd / 3f64.sqrt()).exp()).abs() < 1e-12);
        assert!((i.high - (mean + 4.303 * sd / 3f64.sqrt()).exp()).abs() < 1e-12);
        assert_eq!(s.direction(1.0), Direction::Above);
        assert_eq!(Spread::of(&[2.0, 2.0]).unwrap().across, Some(Interval { low: 2.0, high: 2.0 }));
        assert_eq!(Spread::of(&[4.0, 1.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn a_verdict_needs_every_repeat_on_one_side_and_an_interval_that_excludes_one() {
        // The ResNet p99 ratios at 8 Pods: better, then worse.
        assert_eq!(Spread::of(&[0.677, 1.10]).unwrap().direction(1.0), Direction::NoConsistentDifference);
        // Every repeat above 1 but too few and too spread to exclude it.
        assert_eq!(Spread::of(&[1.01, 1.9]).unwrap().direction(1.0), Direction::NoConsistentDifference);
        assert_eq!(Spread::of(&[0.70, 0.68, 0.72, 0.69]).unwrap().direction(1.0), Direction::Below);
        assert_eq!(Spread::of(&[1.25]).unwrap().direction(1.0), Direction::OneRepeat);
        // Zero (an overlap of 0%) falls back to the plain t interval.
        let zeros = Spread::of(&[0.0, 0.0, 0.0]).unwrap();
        assert_eq!(zeros.across, Some(Interval { low: 0.0, high: 0.0 }));
    }

    #[test]
    fn t_quantiles_match_the_tables() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert_eq!(t_quantile_975(4), 2.776);
        assert!((t_quantile_975(60) - 2.000).abs() < 0.003);
        assert!((t_quantile_975(120) - 1.980).abs() < 0.003);
        assert!(t_quantile_975(0).is_infinite());
    }

    /// A standard normal draw (Box-Muller) from the deterministic generator.
    fn normal(rng: &mut SplitMix64) -> f64 {
        let u = |rng: &mut SplitMix64| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (a, b) = (u(rng).max(1e-300), u(rng));
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }

    #[test]
    fn the_interval_covers_the_true_value_95_percent_of_the_time() {
        // Repeats of a throughput with a known typical value (1500/s) and a run-to-run spread of 8% (lognormal):
        // over 4000 studies of 3 and of 5 repeats, the interval holds 1500 in about 95% of them.
        let mut rng = SplitMix64::new(2026);
        for repeats in [3usize, 5] {
            let trials = 4000;
            let covered = (0..trials)
                .filter(|_| {
                    let values: Vec<f64> = (0..repeats).map(|_| 1500.0 * (0.08 * normal(&mut rng)).exp()).collect();
                    let i = Spread::of(&values).unwrap().across.unwrap();
                    i.low <= 1500.0 && 1500.0 <= i.high
                })
                .count();
            let coverage = covered as f64 / trials as f64;
            assert!((0.935..=0.965).contains(&coverage), "{repeats} repeats: coverage {coverage}");
        }
    }
}
