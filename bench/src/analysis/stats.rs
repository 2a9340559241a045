//! Small statistics: latency percentiles from histograms, Jain's fairness index, and bootstrap confidence
//! intervals with a seeded generator (so the same results always give the same report). Pure.

use crate::result::histogram::LatencyHistogram;
use serde::Serialize;

/// The percentiles every latency summary reports, with the sample count behind them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize, Default)]
#[serde(default)]
pub struct LatencySummary {
    pub samples: u64,
    pub mean_ns: f64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
    /// Distribution-free 95% bounds of p99 and p99.9 from the sample count (`None`: too few samples for one).
    pub p99_bounds_ns: Option<[u64; 2]>,
    pub p999_bounds_ns: Option<[u64; 2]>,
}

impl LatencySummary {
    pub fn of(h: &LatencyHistogram) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            samples: h.len(),
            mean_ns: h.mean(),
            p50_ns: h.value_at_quantile(0.5),
            p90_ns: h.value_at_quantile(0.9),
            p99_ns: h.value_at_quantile(0.99),
            p999_ns: h.value_at_quantile(0.999),
            max_ns: h.max(),
            p99_bounds_ns: bounds(h, 0.99),
            p999_bounds_ns: bounds(h, 0.999),
        }
    }

    /// Whether the q-quantile has a distribution-free 95% bound on both sides at this sample count.
    pub fn enough_for(&self, quantile: f64) -> bool {
        self.samples >= super::percentile_bounds::min_samples_95(quantile)
    }
}

/// The values at the ranks that bracket the q-quantile with 95% confidence (see `percentile_bounds`).
fn bounds(h: &LatencyHistogram, q: f64) -> Option<[u64; 2]> {
    let n = h.len();
    match super::percentile_bounds::ranks_95(n, q) {
        (Some(low), Some(high)) => {
            Some([h.value_at_quantile(low as f64 / n as f64), h.value_at_quantile(high as f64 / n as f64)])
        }
        _ => None,
    }
}

/// Jain's fairness index of non-negative allocations: 1 when all are equal, 1/n when one gets everything.
pub fn jain_index(values: &[f64]) -> f64 {
    let sum: f64 = values.iter().sum();
    let squares: f64 = values.iter().map(|v| v * v).sum();
    if values.is_empty() || squares == 0.0 {
        return 1.0;
    }
    sum * sum / (values.len() as f64 * squares)
}

/// A deterministic generator (SplitMix64): fast, seedable, good enough for resampling.
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// An estimate with a 95% confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Estimate {
    /// Whether the interval excludes `x` (e.g. 1.0 for "no difference").
    pub fn excludes(&self, x: f64) -> bool {
        x < self.ci_low || x > self.ci_high
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

fn resampled_mean(values: &[f64], rng: &mut SplitMix64) -> f64 {
    (0..values.len()).map(|_| values[rng.below(values.len())]).sum::<f64>() / values.len() as f64
}

/// The `q` quantile of sorted values, nearest rank (`sorted` must not be empty).
pub(crate) fn percentile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Bootstrap 95% interval of mean(a) / mean(b), resampling each independently.
pub fn ratio_of_means(a: &[f64], b: &[f64], resamples: usize, seed: u64) -> Option<Estimate> {
    if a.is_empty() || b.is_empty() || mean(b) == 0.0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut ratios: Vec<f64> = (0..resamples)
        .map(|_| resampled_mean(a, &mut rng) / resampled_mean(b, &mut rng))
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    ratios.sort_by(f64::total_cmp);
    Some(Estimate {
        value: mean(a) / mean(b),
        ci_low: percentile_of_sorted(&ratios, 0.025),
        ci_high: percentile_of_sorted(&ratios, 0.975),
    })
}

/// Bootstrap 95% interval of mean(a).
pub fn mean_estimate(a: &[f64], resamples: usize, seed: u64) -> Option<Estimate> {
    ratio_of_means(a, &[1.0], resamples, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::histogram;

    #[test]
    fn percentiles_carry_their_sample_count() {
        let mut h = histogram::new_latency_histogram();
        for v in 1..=1000u64 {
            histogram::record(&mut h, v * 1000);
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.samples, 1000);
        assert!((s.p50_ns as f64 - 500_000.0).abs() / 500_000.0 < 0.002);
        assert!((s.p99_ns as f64 - 990_000.0).abs() / 990_000.0 < 0.002);
        assert!(s.enough_for(0.99));
        assert!(!s.enough_for(0.999));
        // p99 of 1000 samples lies between the 983rd and 997th: 983 and 997 us here.
        let [low, high] = s.p99_bounds_ns.unwrap();
        assert!((low as f64 / 983_000.0 - 1.0).abs() < 0.002 && (high as f64 / 997_000.0 - 1.0).abs() < 0.002);
        assert!(low <= s.p99_ns && s.p99_ns <= high);
        assert!(s.p999_bounds_ns.is_none());
        assert_eq!(LatencySummary::of(&histogram::new_latency_histogram()).samples, 0);
    }

    #[test]
    fn jain_index_bounds() {
        assert!((jain_index(&[5.0, 5.0, 5.0]) - 1.0).abs() < 1e-12);
        assert!((jain_index(&[1.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
        assert_eq!(jain_index(&[]), 1.0);
    }

    #[test]
    fn bootstrap_is_reproducible_and_brackets_the_ratio() {
        let a: Vec<f64> = (0..50).map(|i| 200.0 + (i % 7) as f64).collect();
        let b: Vec<f64> = (0..50).map(|i| 100.0 + (i % 5) as f64).collect();
        let e = ratio_of_means(&a, &b, 500, 7).unwrap();
        assert_eq!(e, ratio_of_means(&a, &b, 500, 7).unwrap());
        assert!(e.ci_low <= e.value && e.value <= e.ci_high);
        assert!(e.excludes(1.0));
        assert!(ratio_of_means(&a, &[], 10, 1).is_none());
        let same = ratio_of_means(&a, &a, 500, 3).unwrap();
        assert!(!same.excludes(1.0));
    }
}
