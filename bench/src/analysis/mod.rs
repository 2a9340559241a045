//! Analysis of loaded worker results, as pure functions: grouping by run, mode, worker count and GPU, and
//! within a group by repeat; per repeat throughput, overlap, latency and fairness; across repeats the headline
//! figures and the comparisons between modes (`figures`).
//!
//! Workers that ran on different GPUs did not share one; they are never averaged together.

pub mod capacity;
pub mod conditions;
pub mod figures;
pub mod group;
pub mod isolation;
pub mod observer;
pub mod overlap;
pub mod percentile_bounds;
pub mod repeats;
pub mod share;
pub mod stats;
pub mod warnings;

pub use figures::{Comparison, GroupFigures, RatioFigure};
pub use warnings::{Warning, WarningKind};

use crate::load::{Clock, Worker};
use crate::result::histogram;
use crate::result::SharingVerdict;
use crate::workload::KernelShape;
use serde::Serialize;
use stats::{Estimate, LatencySummary};
use std::collections::BTreeMap;

/// Bootstrap resamples behind every interval.
const RESAMPLES: usize = 1000;
/// Time windows a group's makespan is cut into for throughput intervals.
const WINDOWS: usize = 20;

/// What makes workers comparable: same run, mode, worker count and GPU.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    pub run_id: String,
    pub workers: u32,
    pub gpu_uuid: String,
    pub mode: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerSummary {
    pub worker: u32,
    pub source: String,
    pub host: String,
    pub pid: u32,
    pub verdict: SharingVerdict,
    pub complete: bool,
    pub error: Option<String>,
    pub kernels: u64,
    pub kernels_per_s: f64,
    pub latency: LatencySummary,
    /// Mean device time and SMs of its kernels (`None` for a foreign command: its kernels are not visible).
    pub mean_device_ns: Option<f64>,
    pub mean_sm_count: Option<f64>,
    /// A foreign command that reported no request (a neighbour only): its run time and exit status.
    pub neighbour: Option<String>,
    /// Mean latency over the solo run's mean latency, when a solo run of this configuration exists.
    pub slowdown_vs_solo: Option<f64>,
}

/// One repeat of one group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub key: GroupKey,
    /// Which repeat of the group's configuration (0-based).
    pub repeat: u32,
    /// Why this repeat is not a valid measurement (too short, too few samples); empty: valid.
    pub invalid: Vec<String>,
    pub gpu_name: String,
    pub driver_version: Option<String>,
    /// When its first worker started measuring (Unix ns).
    pub started_unix_ns: u64,
    /// How its first worker was started.
    pub command_line: Vec<String>,
    /// The kernel, or for a foreign command's workers the command.
    pub shape: Option<KernelShape>,
    pub command: Option<Vec<String>>,
    /// The clock the group's timeline is on: the device's for sharebench's kernels, the hosts' when any worker
    /// ran a foreign command (whose kernels sharebench cannot see).
    pub clock: Clock,
    /// Workers whose sharing verdict matches the mode (`mps`: joined; `timeslice`/`streams`: not a client).
    pub verified_workers: u32,
    pub workers_reported: u32,
    /// Pods of the same window that ran alone, with no sharebench worker (`compare --observer-effect`'s shared
    /// window): the GPU was shared by `workers_reported + alone_beside` tenants.
    #[serde(skip_serializing_if = "is_zero")]
    pub alone_beside: u32,
    pub complete: bool,
    pub kernels: u64,
    pub makespan_ns: u64,
    /// Kernel overlap on the device; `None` on the host clock (a foreign command's kernels are not visible, so
    /// how they overlapped is not known, and is not shown as zero).
    pub busy_ns: Option<u64>,
    pub overlap_ns: Option<u64>,
    pub overlap_fraction: Option<f64>,
    pub mean_concurrency: Option<f64>,
    pub time_at_concurrency_ns: Vec<u64>,
    /// Kernels (or a command's requests) per second, all workers together.
    pub kernels_per_s: Estimate,
    pub flop_per_s: Option<f64>,
    pub bytes_per_s: Option<f64>,
    /// Items and tokens per second, where commands reported them.
    pub items_per_s: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub latency: LatencySummary,
    pub fairness_jain: f64,
    pub per_worker: Vec<WorkerSummary>,
    /// The run's conditions, from the telemetry its worker 0 sampled (`None`: no telemetry in the results).
    pub conditions: Option<conditions::Conditions>,
    /// Time to first token and time per output token over the group's streamed requests (`None`: its commands
    /// reported no `ttft_ms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft: Option<LatencySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot: Option<LatencySummary>,
    /// TTFT p99 and TPOT p99 over the solo run's (one worker, same run and GPU; its same repeat, else its
    /// first), where both streamed: what sharing did to the first token and to every token after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_p99_vs_solo: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot_p99_vs_solo: Option<f64>,
    /// TPOT p50 over the solo run's: the median per-token cost of sharing (what studies of LLM serving report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpot_p50_vs_solo: Option<f64>,
    /// What a Pod's context could use of the GPU's memory and under which limit, in words (`None`: results
    /// written before it was recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    /// How the figures across repeats are summarised, and the validity rules, in words.
    pub method: Method,
    /// Every repeat of every group.
    pub groups: Vec<GroupSummary>,
    /// Each group's headline figures across its repeats.
    pub figures: Vec<GroupFigures>,
    pub comparisons: Vec<Comparison>,
    pub warnings: Vec<Warning>,
    /// Pods that asked MPS for a share of the SMs, against the same kernel alone on the whole GPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shares: Vec<share::ShareRow>,
    /// What a faulting or memory-greedy neighbour did to the other workers of its run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub isolation: Vec<isolation::IsolationVerdict>,
}

/// The statistics and rules behind the figures, recorded with them.
#[derive(Debug, Clone, Serialize)]
pub struct Method {
    pub across_repeats: &'static str,
    pub within_run: &'static str,
    pub percentile_bounds: &'static str,
    pub min_duration_s: f64,
    pub min_samples: u64,
}

impl Default for Method {
    fn default() -> Method {
        Method {
            across_repeats: repeats::METHOD,
            within_run: "bootstrap over 20 time windows of one run (the run's own noise, not run-to-run)",
            percentile_bounds:
                "distribution-free 95% bounds from order statistics (binomial), as LoadGen's early stopping",
            min_duration_s: figures::MIN_DURATION_S,
            min_samples: figures::min_samples(),
        }
    }
}

impl GroupSummary {
    /// Mean over workers of their slowdown against the solo run, when there is one.
    pub fn mean_slowdown(&self) -> Option<f64> {
        let values: Vec<f64> =
            self.per_worker.iter().filter_map(|w| w.slowdown_vs_solo).filter(|v| v.is_finite()).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    }
}

fn key_of(w: &Worker) -> GroupKey {
    GroupKey { run_id: w.run_id.clone(), workers: w.config.workers, gpu_uuid: w.gpu.uuid.clone(), mode: w.mode.clone() }
}

/// Workers by group, all repeats together (charts and the trace), in repeat and worker order.
pub fn group_workers(workers: &[Worker]) -> BTreeMap<GroupKey, Vec<&Worker>> {
    let mut groups: BTreeMap<GroupKey, Vec<&Worker>> = BTreeMap::new();
    for w in workers {
        groups.entry(key_of(w)).or_default().push(w);
    }
    for members in groups.values_mut() {
        members.sort_by_key(|w| (w.config.repeat, w.worker));
    }
    groups
}

/// Workers by group and repeat, each in worker order.
pub fn group_repeats(workers: &[Worker]) -> BTreeMap<(GroupKey, u32), Vec<&Worker>> {
    let mut groups: BTreeMap<(GroupKey, u32), Vec<&Worker>> = BTreeMap::new();
    for w in workers {
        groups.entry((key_of(w), w.config.repeat)).or_default().push(w);
    }
    for members in groups.values_mut() {
        members.sort_by_key(|w| w.worker);
    }
    groups
}

/// ` repeat 3` where a run has several repeats, else nothing: how warnings name a repeat.
fn repeat_tag(repeat: u32, repeats: u32) -> String {
    if repeats > 1 {
        format!(" repeat {}", repeat + 1)
    } else {
        String::new()
    }
}

/// The workers of one run, mode, worker count and repeat across GPUs.
#[derive(Default)]
struct RunSpread {
    gpus: Vec<String>,
    reported: u32,
    complete: u32,
    /// The workers expected: all of the run's, or in a shared observer window only those of this side.
    expected: u32,
}

/// The workers a group of `workers` expects: all of them, or where part of its window ran alone (`compare
/// --observer-effect`) the side its members are on (the alone side's results name themselves as alone).
fn expected_workers(workers: u32, members: &[&Worker]) -> u32 {
    let Some(first) = members.iter().find(|w| !w.config.alone_indices.is_empty()) else { return workers };
    let alone = first.config.alone_indices.len() as u32;
    match first.config.alone_indices.contains(&first.worker) {
        true => alone,
        false => workers.saturating_sub(alone),
    }
}

/// Groups, summarizes each repeat, and summarises and compares across repeats.
pub fn analyze(workers: &[Worker]) -> Analysis {
    let groups = group_repeats(workers);
    let mut warnings = Vec::new();
    // Repeats per run: how warnings name them.
    let mut repeats_of: BTreeMap<String, u32> = BTreeMap::new();
    for (key, repeat) in groups.keys() {
        let n = repeats_of.entry(key.run_id.clone()).or_default();
        *n = (*n).max(repeat + 1);
    }
    let tag = |run: &str, repeat: u32| repeat_tag(repeat, repeats_of.get(run).copied().unwrap_or(1));
    // The workers of one run, mode, count and repeat, whichever GPU they ran on: complete when all of them
    // reported, and spread over GPUs when they ran on more than one.
    let mut run_wide: BTreeMap<(String, u32, String, u32), RunSpread> = BTreeMap::new();
    for ((key, repeat), members) in &groups {
        let spread = run_wide.entry((key.run_id.clone(), key.workers, key.mode.clone(), *repeat)).or_default();
        spread.gpus.push(key.gpu_uuid.clone());
        spread.reported += members.len() as u32;
        spread.complete += members.iter().filter(|w| w.status.complete).count() as u32;
        spread.expected = expected_workers(key.workers, members);
    }
    for ((run, workers, mode, repeat), RunSpread { gpus, .. }) in &run_wide {
        if gpus.len() > 1 {
            warnings.push(Warning {
                kind: WarningKind::SpreadOverGpus,
                run_id: run.clone(),
                subject: format!("{mode} x{workers}{} on {} GPUs", tag(run, *repeat), gpus.len()),
                text: format!(
                    "run {run}, mode {mode}, {workers} workers: workers ran on {} different GPUs ({}), so they did not share one; each GPU is reported on its own",
                    gpus.len(),
                    gpus.join(", ")
                ),
            });
        }
    }
    let solo_latency = |key: &GroupKey, repeat: u32| -> Option<f64> {
        SOLO_MODES.iter().find_map(|mode| {
            let solo = GroupKey {
                run_id: key.run_id.clone(),
                workers: 1,
                gpu_uuid: key.gpu_uuid.clone(),
                mode: mode.to_string(),
            };
            // The solo run of the same repeat, else its first.
            let members = groups
                .get(&(solo.clone(), repeat))
                .or_else(|| groups.range((solo.clone(), 0)..=(solo, u32::MAX)).next().map(|(_, m)| m))?;
            Some(group::mean_latency(&histogram::merged(members.iter().map(|w| &w.histogram))))
        })
    };
    // Each repeat of each group on its own core (and a large one's sweep on all of them).
    let repeats: Vec<(&(GroupKey, u32), &Vec<&Worker>)> = groups.iter().collect();
    let summarised = crate::parallel::map(&repeats, |((key, repeat), members)| {
        group::summarize_group(key.clone(), *repeat, members, solo_latency(key, *repeat))
    });
    let (mut summaries, mut window_rates): (Vec<GroupSummary>, Vec<Vec<f64>>) =
        summarised.into_iter().map(|s| (s.summary, s.window_rates)).unzip();
    for g in &mut summaries {
        let spread = &run_wide[&(g.key.run_id.clone(), g.key.workers, g.key.mode.clone(), g.repeat)];
        g.complete = spread.reported == spread.expected && spread.complete == spread.reported;
    }
    for ((run, workers, mode, repeat), RunSpread { reported, complete, expected, .. }) in &run_wide {
        if !(reported == expected && complete == reported) {
            warnings.push(Warning {
                kind: WarningKind::Incomplete,
                run_id: run.clone(),
                subject: format!("{mode} x{workers}{} ({reported} reported, {complete} complete)", tag(run, *repeat)),
                text: format!(
                    "run {run}, mode {mode}{}: {reported} of {expected} workers reported, {complete} complete; figures cover what was recorded",
                    tag(run, *repeat)
                ),
            });
        }
    }
    streaming_vs_solo(&mut summaries);
    for g in &summaries {
        let which = format!("{} x{}{}", g.key.mode, g.key.workers, tag(&g.key.run_id, g.repeat));
        warnings.extend(warnings::of_group(g, &groups[&(g.key.clone(), g.repeat)], &which));
    }
    let mut by_key: BTreeMap<&GroupKey, Vec<&GroupSummary>> = BTreeMap::new();
    for g in &summaries {
        by_key.entry(&g.key).or_default().push(g);
    }
    let figures: Vec<GroupFigures> = by_key.iter().filter_map(|(k, rs)| figures::group_figures(k, rs)).collect();
    // Comparisons: per run, worker count and GPU, each mode's repeats with their window rates.
    type Modes<'a> = BTreeMap<String, BTreeMap<u32, figures::RepeatOfMode<'a>>>;
    let mut runs: BTreeMap<(String, u32, String), Modes> = BTreeMap::new();
    for (g, window_rates) in summaries.iter().zip(window_rates.iter_mut()) {
        let repeat = figures::RepeatOfMode { summary: g, window_rates: std::mem::take(window_rates) };
        runs.entry((g.key.run_id.clone(), g.key.workers, g.key.gpu_uuid.clone()))
            .or_default()
            .entry(g.key.mode.clone())
            .or_default()
            .insert(g.repeat, repeat);
    }
    let comparisons =
        runs.iter().filter_map(|((run, n, gpu), modes)| figures::compare((run, *n, gpu), modes)).collect();
    let (shares, isolation) = (share::shares(workers), isolation::verdicts(workers));
    Analysis { method: Method::default(), groups: summaries, figures, comparisons, warnings, shares, isolation }
}

/// The modes a solo run is taken from, in order of preference: one Pod alone on the GPU, without an MPS server
/// in its path where the run has such a run.
const SOLO_MODES: [&str; 3] = ["timeslice", "unverified", "mps"];

/// Sets each streaming group's TTFT and TPOT p99 against its solo run's (see `GroupSummary::ttft_p99_vs_solo`).
fn streaming_vs_solo(summaries: &mut [GroupSummary]) {
    let solo = |g: &GroupSummary, all: &[GroupSummary]| -> Option<(Option<LatencySummary>, Option<LatencySummary>)> {
        let of_run = |s: &&GroupSummary| {
            s.key.workers == 1 && s.key.run_id == g.key.run_id && s.key.gpu_uuid == g.key.gpu_uuid && s.ttft.is_some()
        };
        // The same solo run as the latency's slowdown: time-slicing first, then unverified, then MPS; its same
        // repeat, else its first.
        let pick = SOLO_MODES.iter().find_map(|mode| {
            let candidates: Vec<&GroupSummary> = all.iter().filter(of_run).filter(|s| s.key.mode == *mode).collect();
            candidates
                .iter()
                .find(|s| s.repeat == g.repeat)
                .or_else(|| candidates.iter().min_by_key(|s| s.repeat))
                .copied()
        })?;
        Some((pick.ttft, pick.tpot))
    };
    let ratio = |a: Option<LatencySummary>, b: Option<LatencySummary>, q: fn(&LatencySummary) -> u64| {
        let (a, b) = (q(&a?) as f64, q(&b?) as f64);
        (b > 0.0).then(|| a / b)
    };
    type Quantile = fn(&LatencySummary) -> u64;
    let (p50, p99): (Quantile, Quantile) = (|l| l.p50_ns, |l| l.p99_ns);
    let found: Vec<Option<(Option<LatencySummary>, Option<LatencySummary>)>> =
        summaries.iter().map(|g| if g.ttft.is_some() { solo(g, summaries) } else { None }).collect();
    for (g, solo) in summaries.iter_mut().zip(found) {
        if let Some((ttft, tpot)) = solo {
            (g.ttft_p99_vs_solo, g.tpot_p99_vs_solo) = (ratio(g.ttft, ttft, p99), ratio(g.tpot, tpot, p99));
            g.tpot_p50_vs_solo = ratio(g.tpot, tpot, p50);
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
pub mod tests;
