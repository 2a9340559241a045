//! Headline figures across repeats (pure): for each group (run, mode, worker count, GPU) the median of every
//! headline figure over its repeats with an interval across them ([`repeats::Spread`]), and for each run and
//! worker count the ratios between modes, paired repeat by repeat (repeat r of MPS against repeat r of
//! time-slicing: interleaved, they ran minutes apart under the same drift). Also the validity rules: a figure is
//! only as good as the run behind it, and a run too short or too thin is INVALID, as MLPerf LoadGen marks one.

use super::repeats::Spread;
use super::stats::{self, Estimate};
use super::{GroupKey, GroupSummary};
use serde::Serialize;
use std::collections::BTreeMap;

/// Shortest measurement of one mode in one repeat for its figures to count (device or host makespan).
pub const MIN_DURATION_S: f64 = 0.5;

/// Fewest latency samples of one mode in one repeat: enough for a distribution-free 95% bound on its p99.
pub fn min_samples() -> u64 {
    super::percentile_bounds::min_samples_95(0.99)
}

/// Why one repeat of a group is not a valid measurement (empty: valid).
pub fn invalid_reasons(makespan_ns: u64, samples: u64, has_requests: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    let seconds = makespan_ns as f64 / 1e9;
    if seconds < MIN_DURATION_S {
        reasons.push(format!("measured {seconds:.2} s, less than the {MIN_DURATION_S} s minimum"));
    }
    if has_requests && samples < min_samples() {
        reasons.push(format!("{samples} latency samples, fewer than the {} a p99 bound needs", min_samples()));
    }
    reasons
}

/// A group whose kernels did more FLOP/s than its GPU can (its SMs x FP32 lanes x 2 x clock, as the result
/// records them), beyond a 10% margin for clocks above the recorded one: its records are duplicated or corrupted.
pub fn above_peak(flop_per_s: Option<f64>, gpu: &crate::result::GpuIdentity) -> Option<String> {
    let (lanes, khz) = (gpu.fp32_lanes_per_sm?, gpu.clock_khz?);
    let peak = gpu.sm_count as f64 * lanes as f64 * 2.0 * khz as f64 * 1e3;
    let done = flop_per_s?;
    (peak > 0.0 && done > 1.1 * peak).then(|| {
        format!(
            "{:.1} TFLOP/s is above the GPU's own FP32 peak of {:.1} TFLOP/s: impossible (records duplicated or corrupted)",
            done / 1e12,
            peak / 1e12
        )
    })
}

/// A group's headline figures over its repeats.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigures {
    pub key: GroupKey,
    /// The repeats behind the figures, in order.
    pub repeats: Vec<u32>,
    /// Kernels (or requests) per second.
    pub throughput: Spread,
    /// The repeat whose throughput is nearest the median: its within-run interval (a bootstrap over time windows
    /// of one run) is shown beside the interval across repeats, never as the figure's uncertainty on its own, and
    /// it stands for the group where one repeat's figure is shown (FLOP/s, B/s, items/s).
    pub median_repeat: u32,
    pub within_run: Estimate,
    /// Latency percentiles (`None` where no repeat recorded a latency: a silent neighbour).
    pub p50_ns: Option<Spread>,
    pub p99_ns: Option<Spread>,
    pub p999_ns: Option<Spread>,
    pub fairness: Spread,
    pub slowdown_vs_solo: Option<Spread>,
    pub overlap_fraction: Option<Spread>,
    /// Latency samples over all repeats.
    pub samples: u64,
    /// Why the group is INVALID, per repeat (empty: valid).
    pub invalid: Vec<String>,
    /// Output tokens/s, TTFT and TPOT over the repeats, where the group's commands streamed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub streamed: Option<StreamedFigures>,
}

/// A streaming (LLM serving) group's figures over its repeats: each a median with its interval across repeats.
#[derive(Debug, Clone, Serialize)]
pub struct StreamedFigures {
    pub tokens_per_s: Option<Spread>,
    pub ttft_p99_ns: Spread,
    pub tpot_p50_ns: Option<Spread>,
    pub tpot_p99_ns: Option<Spread>,
    pub ttft_p99_vs_solo: Option<Spread>,
    pub tpot_p50_vs_solo: Option<Spread>,
    pub tpot_p99_vs_solo: Option<Spread>,
}

/// The streamed figures of a group's repeats (`None` where no repeat streamed).
fn streamed_figures(repeats: &[&GroupSummary]) -> Option<StreamedFigures> {
    let spread = |f: &dyn Fn(&GroupSummary) -> Option<f64>| spread_over(repeats, f);
    Some(StreamedFigures {
        ttft_p99_ns: spread(&|g| g.ttft.map(|l| l.p99_ns as f64))?,
        tpot_p50_ns: spread(&|g| g.tpot.map(|l| l.p50_ns as f64)),
        tpot_p99_ns: spread(&|g| g.tpot.map(|l| l.p99_ns as f64)),
        tokens_per_s: spread(&|g| g.tokens_per_s),
        ttft_p99_vs_solo: spread(&|g| g.ttft_p99_vs_solo),
        tpot_p50_vs_solo: spread(&|g| g.tpot_p50_vs_solo),
        tpot_p99_vs_solo: spread(&|g| g.tpot_p99_vs_solo),
    })
}

impl GroupFigures {
    pub fn valid(&self) -> bool {
        self.invalid.is_empty()
    }
}

/// The figures of one group from its repeats' summaries (`None` without any).
/// A figure over the repeats that have it.
fn spread_over(repeats: &[&GroupSummary], figure: &dyn Fn(&GroupSummary) -> Option<f64>) -> Option<Spread> {
    Spread::of(&repeats.iter().filter_map(|g| figure(g)).collect::<Vec<_>>())
}

pub fn group_figures(key: &GroupKey, repeats: &[&GroupSummary]) -> Option<GroupFigures> {
    let spread = |f: &dyn Fn(&GroupSummary) -> Option<f64>| spread_over(repeats, f);
    let throughput = spread(&|g| Some(g.kernels_per_s.value))?;
    let median_repeat = repeats
        .iter()
        .min_by(|a, b| {
            (a.kernels_per_s.value - throughput.median)
                .abs()
                .total_cmp(&(b.kernels_per_s.value - throughput.median).abs())
        })
        .expect("a spread has a repeat");
    let latency = |pick: fn(&GroupSummary) -> u64| spread(&|g| (g.latency.samples > 0).then(|| pick(g) as f64));
    Some(GroupFigures {
        key: key.clone(),
        repeats: repeats.iter().map(|g| g.repeat).collect(),
        median_repeat: median_repeat.repeat,
        within_run: median_repeat.kernels_per_s,
        p50_ns: latency(|g| g.latency.p50_ns),
        p99_ns: latency(|g| g.latency.p99_ns),
        p999_ns: latency(|g| g.latency.p999_ns),
        fairness: spread(&|g| Some(g.fairness_jain))?,
        slowdown_vs_solo: spread(&|g| g.mean_slowdown()),
        overlap_fraction: spread(&|g| g.overlap_fraction),
        samples: repeats.iter().map(|g| g.latency.samples).sum(),
        invalid: repeats
            .iter()
            .flat_map(|g| {
                g.invalid.iter().map(move |r| format!("{} x{} repeat {}: {r}", key.mode, key.workers, g.repeat + 1))
            })
            .collect(),
        streamed: streamed_figures(repeats),
        throughput,
    })
}

/// A ratio between two modes, repeat by repeat.
#[derive(Debug, Clone, Serialize)]
pub struct RatioFigure {
    #[serde(flatten)]
    pub spread: Spread,
    /// The repeats paired, in order.
    pub repeats: Vec<u32>,
    /// Each repeat's within-run bootstrap interval (throughput ratios only).
    pub within_run: Vec<Estimate>,
}

/// Ratios between the modes of one run, worker count and GPU, over the repeats both modes ran.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub run_id: String,
    pub workers: u32,
    pub gpu_uuid: String,
    /// Aggregate throughput of MPS over time-slicing.
    pub mps_over_timeslice: Option<RatioFigure>,
    /// MPS throughput as a fraction of the single-process multi-stream ceiling.
    pub mps_over_streams: Option<RatioFigure>,
    pub timeslice_over_streams: Option<RatioFigure>,
    /// p99 latency of MPS over time-slicing.
    pub p99_mps_over_timeslice: Option<RatioFigure>,
}

/// One repeat of one mode: its summary and the window rates its within-run interval is built from.
pub struct RepeatOfMode<'a> {
    pub summary: &'a GroupSummary,
    pub window_rates: Vec<f64>,
}

/// The ratio of `a` over `b`, repeat by repeat over the repeats both have.
fn ratio(
    a: &BTreeMap<u32, RepeatOfMode>,
    b: &BTreeMap<u32, RepeatOfMode>,
    value: fn(&GroupSummary) -> f64,
    within: bool,
    seed: u64,
) -> Option<RatioFigure> {
    let paired: Vec<(u32, &RepeatOfMode, &RepeatOfMode)> =
        a.iter().filter_map(|(r, x)| b.get(r).map(|y| (*r, x, y))).collect();
    let values: Vec<f64> = paired.iter().map(|(_, x, y)| value(x.summary) / value(y.summary)).collect();
    let spread = Spread::of(&values)?;
    let within_run = match within {
        true => paired
            .iter()
            .filter_map(|(r, x, y)| {
                stats::ratio_of_means(&x.window_rates, &y.window_rates, super::RESAMPLES, seed + *r as u64)
            })
            .collect(),
        false => vec![],
    };
    Some(RatioFigure { spread, repeats: paired.iter().map(|p| p.0).collect(), within_run })
}

/// The comparison of one run, worker count and GPU from its modes' repeats (`None` with fewer than two modes).
pub fn compare(
    (run_id, workers, gpu_uuid): (&str, u32, &str),
    modes: &BTreeMap<String, BTreeMap<u32, RepeatOfMode>>,
) -> Option<Comparison> {
    if modes.len() < 2 {
        return None;
    }
    let empty = BTreeMap::new();
    let [ts, mps, streams] = ["timeslice", "mps", "streams"].map(|m| modes.get(m).unwrap_or(&empty));
    let throughput = |g: &GroupSummary| g.kernels_per_s.value;
    let p99 = |g: &GroupSummary| if g.latency.p99_ns > 0 { g.latency.p99_ns as f64 } else { f64::NAN };
    let seed = workers as u64;
    Some(Comparison {
        run_id: run_id.to_string(),
        workers,
        gpu_uuid: gpu_uuid.to_string(),
        mps_over_timeslice: ratio(mps, ts, throughput, true, seed),
        mps_over_streams: ratio(mps, streams, throughput, true, seed),
        timeslice_over_streams: ratio(ts, streams, throughput, true, seed),
        p99_mps_over_timeslice: ratio(mps, ts, p99, false, seed),
    })
}
