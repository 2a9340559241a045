//! When requests arrive: back to back (closed loop), or open loop at a target rate with fixed or Poisson
//! inter-arrival times. Pure: a seeded schedule of intended start offsets.
//!
//! In an open loop a request's latency is measured from its *intended* start, so time spent queueing behind a
//! slow kernel counts (coordinated omission corrected, as wrk2 does); a closed loop measures from the actual
//! submit.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "process", rename_all = "lowercase")]
pub enum Arrivals {
    /// The next kernel is launched as soon as the previous one finished.
    #[default]
    Closed,
    /// One request every 1/rate seconds.
    Fixed { rate_per_s: f64 },
    /// Exponential inter-arrival times with mean 1/rate (a Poisson process), from a seeded generator.
    Poisson { rate_per_s: f64, seed: u64 },
}

impl Arrivals {
    pub fn is_open(&self) -> bool {
        !matches!(self, Arrivals::Closed)
    }
}

/// Intended start offsets (ns after the loop's start) of successive requests.
pub struct Schedule {
    arrivals: Arrivals,
    next_ns: f64,
    state: u64,
}

impl Schedule {
    pub fn new(arrivals: Arrivals) -> Schedule {
        let state = match arrivals {
            Arrivals::Poisson { seed, .. } => seed ^ 0x9e37_79b9_7f4a_7c15,
            _ => 0,
        };
        Schedule { arrivals, next_ns: 0.0, state }
    }

    /// A uniform number in (0, 1] (SplitMix64).
    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// The intended start of the next request, or `None` in a closed loop (start now).
    pub fn next_offset_ns(&mut self) -> Option<u64> {
        let gap_s = match self.arrivals {
            Arrivals::Closed => return None,
            Arrivals::Fixed { rate_per_s } => 1.0 / rate_per_s,
            Arrivals::Poisson { rate_per_s, .. } => -self.uniform().ln() / rate_per_s,
        };
        let at = self.next_ns;
        self.next_ns += gap_s * 1e9;
        Some(at as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_loops_have_no_schedule() {
        assert_eq!(Schedule::new(Arrivals::Closed).next_offset_ns(), None);
    }

    #[test]
    fn fixed_arrivals_are_evenly_spaced() {
        let mut s = Schedule::new(Arrivals::Fixed { rate_per_s: 1000.0 });
        let offsets: Vec<u64> = (0..4).map(|_| s.next_offset_ns().unwrap()).collect();
        assert_eq!(offsets, vec![0, 1_000_000, 2_000_000, 3_000_000]);
    }

    #[test]
    fn poisson_arrivals_have_the_right_mean_and_spread_and_repeat_with_the_seed() {
        let n = 100_000;
        let mut s = Schedule::new(Arrivals::Poisson { rate_per_s: 2000.0, seed: 7 });
        let offsets: Vec<u64> = (0..n).map(|_| s.next_offset_ns().unwrap()).collect();
        let gaps: Vec<f64> = offsets.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 500_000.0).abs() / 500_000.0 < 0.02, "mean {mean}");
        // Exponential: standard deviation equals the mean.
        assert!((var.sqrt() - mean).abs() / mean < 0.03, "sd {}", var.sqrt());
        let mut again = Schedule::new(Arrivals::Poisson { rate_per_s: 2000.0, seed: 7 });
        assert_eq!(again.next_offset_ns(), Some(offsets[0]));
        assert_eq!(again.next_offset_ns(), Some(offsets[1]));
    }

    #[test]
    fn the_result_field_defaults_to_a_closed_loop() {
        let a: Arrivals = serde_json::from_str("{\"process\":\"poisson\",\"rate_per_s\":50.0,\"seed\":1}").unwrap();
        assert!(a.is_open());
        assert_eq!(Arrivals::default(), Arrivals::Closed);
    }
}
