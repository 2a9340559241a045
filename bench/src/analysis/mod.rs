//! Analysis of loaded worker results, as pure functions: grouping by run, mode, worker count and GPU; per-group
//! throughput, overlap, latency and fairness; comparisons between modes with confidence intervals.
//!
//! Workers that ran on different GPUs did not share one; they are never averaged together.

pub mod capacity;
pub mod conditions;
pub mod overlap;
pub mod stats;

use crate::load::{Clock, Worker};
use crate::result::histogram::{self, LatencyHistogram};
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

#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    pub key: GroupKey,
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
}

/// Ratios between the modes of one run, worker count and GPU.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub run_id: String,
    pub workers: u32,
    pub gpu_uuid: String,
    /// Aggregate throughput of MPS over time-slicing.
    pub mps_over_timeslice: Option<Estimate>,
    /// MPS throughput as a fraction of the single-process multi-stream ceiling.
    pub mps_over_streams: Option<Estimate>,
    pub timeslice_over_streams: Option<Estimate>,
    /// p99 latency of MPS over time-slicing.
    pub p99_mps_over_timeslice: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub groups: Vec<GroupSummary>,
    pub comparisons: Vec<Comparison>,
    pub warnings: Vec<Warning>,
}

/// What a warning is about; severe ones question the numbers themselves, advisories their precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// 'mps' workers not verified as MPS clients: their numbers may be time-slicing.
    Unverified,
    /// Workers missing or stopped early.
    Incomplete,
    /// A run's workers ran on several GPUs: they did not share one.
    SpreadOverGpus,
    /// What the caller knows failed (e.g. a compare phase).
    Failed,
    /// The GPU's conditions during the run: clocks moved, throttling, other processes on the GPU.
    Conditions,
    /// Too few samples behind a percentile.
    FewSamples,
    /// No GPU telemetry could be taken (no NVML), so the conditions are unknown.
    NoTelemetry,
    /// A part of the comparison that does not apply to this workload (a foreign command has no streams ceiling).
    NotApplicable,
    /// A foreign command's own troubles that leave its numbers standing: it ignored SIGTERM, it reported nothing.
    Command,
}

impl WarningKind {
    pub fn severe(self) -> bool {
        !matches!(
            self,
            WarningKind::FewSamples | WarningKind::NoTelemetry | WarningKind::NotApplicable | WarningKind::Command
        )
    }

    /// The heading of its group of warnings.
    pub fn title(self) -> &'static str {
        match self {
            WarningKind::Unverified => "MPS membership not verified: the numbers may be time-slicing",
            WarningKind::Incomplete => "incomplete: figures cover what was recorded",
            WarningKind::SpreadOverGpus => {
                "workers on several GPUs: they did not share one, each GPU reported on its own"
            }
            WarningKind::Failed => "failed",
            WarningKind::Conditions => "the GPU's conditions changed during the run (telemetry)",
            WarningKind::FewSamples => "too few samples for a meaningful p99 (1000 needed)",
            WarningKind::NoTelemetry => {
                "no GPU telemetry (NVML unavailable): clocks, throttling and other tenants unknown"
            }
            WarningKind::NotApplicable => "not measured, because it does not apply",
            WarningKind::Command => "foreign commands: what they did besides their requests",
        }
    }
}

/// One warning: its kind, the run and group it concerns (`mps x8`), and the full sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub run_id: String,
    pub subject: String,
    pub text: String,
}

fn verified(mode: &str, verdict: SharingVerdict) -> bool {
    match mode {
        "mps" => verdict == SharingVerdict::MpsJoined,
        "timeslice" | "streams" => matches!(verdict, SharingVerdict::NoDaemon | SharingVerdict::MpsNotJoined),
        _ => false,
    }
}

/// Kernels finishing in each of `WINDOWS` equal windows of [first, last], as rates (kernels/s).
fn window_rates(ends: impl Iterator<Item = u64>, first: u64, last: u64) -> Vec<f64> {
    let span = (last - first).max(1);
    let mut counts = vec![0u64; WINDOWS];
    for end in ends {
        let i = (((end - first) as u128 * WINDOWS as u128) / span as u128).min(WINDOWS as u128 - 1) as usize;
        counts[i] += 1;
    }
    let window_s = span as f64 / 1e9 / WINDOWS as f64;
    counts.into_iter().map(|c| c as f64 / window_s).collect()
}

fn mean_latency(h: &LatencyHistogram) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.mean()
    }
}

fn summarize_group(key: GroupKey, members: &[&Worker], solo_mean_latency: Option<f64>) -> GroupSummary {
    let clock = Clock::common(members.iter().copied());
    let overlap = overlap::overlap(members.iter().map(|w| w.intervals(clock).collect()).collect());
    let kernels: u64 = members.iter().map(|w| w.records.len() as u64).sum();
    let makespan_s = overlap.makespan_ns.max(1) as f64 / 1e9;
    let rates = group_rates(members, clock);
    let seed = key.workers as u64 * 7919 + key.mode.len() as u64;
    let mut kernels_per_s =
        stats::mean_estimate(&rates, RESAMPLES, seed).unwrap_or(Estimate { value: 0.0, ci_low: 0.0, ci_high: 0.0 });
    kernels_per_s.value = kernels as f64 / makespan_s;
    let mut merged = histogram::new_latency_histogram();
    let per_worker: Vec<WorkerSummary> = members
        .iter()
        .map(|w| {
            // Both come from new_latency_histogram's bounds, so the merge cannot fail.
            let _ = histogram::merge(&mut merged, &w.histogram);
            let n = w.records.len().max(1) as f64;
            let span = match (
                w.intervals(clock).map(|(start, _)| start).min(),
                w.intervals(clock).map(|(_, end)| end).max(),
            ) {
                (Some(s), Some(e)) if e > s => (e - s) as f64 / 1e9,
                _ => f64::NAN,
            };
            let on_device = |f: fn(&crate::result::records::KernelRecord) -> f64| {
                w.device_stamps.then(|| w.records.iter().map(f).sum::<f64>() / n)
            };
            WorkerSummary {
                worker: w.worker,
                source: w.source.clone(),
                host: w.host.pod.clone().unwrap_or_else(|| w.host.hostname.clone()),
                pid: w.host.pid,
                verdict: w.verdict,
                complete: w.status.complete,
                error: w.status.error.clone(),
                kernels: w.records.len() as u64,
                kernels_per_s: w.records.len() as f64 / span,
                latency: LatencySummary::of(&w.histogram),
                mean_device_ns: on_device(|r| r.device_duration_ns() as f64),
                mean_sm_count: on_device(|r| r.sm_count as f64),
                neighbour: w.neighbour_only().then(|| neighbour_text(w)),
                slowdown_vs_solo: solo_mean_latency.map(|solo| mean_latency(&w.histogram) / solo),
            }
        })
        .collect();
    // Fairness is among the workers whose own requests are known: a silent neighbour has no share to judge.
    let shares: Vec<f64> = per_worker
        .iter()
        .filter(|w| w.neighbour.is_none())
        .map(|w| if w.kernels_per_s.is_finite() { w.kernels_per_s } else { 0.0 })
        .collect();
    let shape = members[0].config.shape;
    let per_launch = |work: fn(&KernelShape) -> u64| {
        shape.map(|s| work(&s)).filter(|&w| w > 0).map(|w| kernels as f64 * w as f64 / makespan_s)
    };
    let per_second = |count: fn(&crate::result::tenant::TenantReport) -> Option<u64>| {
        let counts: Vec<u64> = members.iter().filter_map(|w| w.tenant.as_ref().and_then(count)).collect();
        (!counts.is_empty()).then(|| counts.iter().sum::<u64>() as f64 / makespan_s)
    };
    let on_device = clock == Clock::Device;
    GroupSummary {
        gpu_name: members[0].gpu.name.clone(),
        driver_version: members[0].gpu.driver_version.clone(),
        started_unix_ns: members.iter().map(|w| w.started_unix_ns).min().unwrap_or(0),
        command_line: members[0].config.command_line.clone(),
        shape,
        command: members.iter().find_map(|w| w.config.command.clone()),
        clock,
        verified_workers: members.iter().filter(|w| verified(&key.mode, w.verdict)).count() as u32,
        workers_reported: members.len() as u32,
        // Settled in `analyze`, which sees the run's workers on every GPU.
        complete: members.iter().all(|w| w.status.complete),
        kernels,
        makespan_ns: overlap.makespan_ns,
        busy_ns: on_device.then_some(overlap.busy_ns),
        overlap_ns: on_device.then_some(overlap.overlap_ns),
        overlap_fraction: on_device.then(|| overlap.overlap_fraction()),
        mean_concurrency: on_device.then(|| overlap.mean_concurrency()),
        time_at_concurrency_ns: if on_device { overlap.time_at_concurrency_ns.clone() } else { vec![] },
        kernels_per_s,
        flop_per_s: per_launch(KernelShape::flop_per_launch),
        bytes_per_s: per_launch(KernelShape::bytes_per_launch),
        items_per_s: per_second(|t| t.items),
        tokens_per_s: per_second(|t| t.tokens),
        latency: LatencySummary::of(&merged),
        fairness_jain: stats::jain_index(&shares),
        per_worker,
        conditions: members.iter().find_map(|w| w.telemetry.as_ref()).map(|t| {
            let pids: Vec<u32> = members.iter().flat_map(|w| w.own_pids()).collect();
            conditions::judge(t, &pids)
        }),
        key,
    }
}

/// A silent neighbour in words: how long its command ran and how it ended.
fn neighbour_text(w: &Worker) -> String {
    match &w.tenant {
        Some(t) => format!(
            "a neighbour only (reported no request): ran {:.1} s, {} ({})",
            t.ran_s,
            t.ending,
            t.exit_status.as_deref().unwrap_or("?")
        ),
        None => "a neighbour only".into(),
    }
}

/// Earliest start and latest end of a group's records on `clock`.
pub fn span(members: &[&Worker], clock: Clock) -> (u64, u64) {
    let all = || members.iter().flat_map(|w| w.intervals(clock));
    let first = all().map(|(start, _)| start).min().unwrap_or(0);
    let last = all().map(|(_, end)| end).max().unwrap_or(first);
    (first, last)
}

/// The window rates of a group again, for ratio intervals.
fn group_rates(members: &[&Worker], clock: Clock) -> Vec<f64> {
    let (first, last) = span(members, clock);
    window_rates(members.iter().flat_map(|w| w.intervals(clock).map(|(_, end)| end)), first, last)
}

/// Workers by group, each group in worker order.
pub fn group_workers(workers: &[Worker]) -> BTreeMap<GroupKey, Vec<&Worker>> {
    let mut groups: BTreeMap<GroupKey, Vec<&Worker>> = BTreeMap::new();
    for w in workers {
        let key = GroupKey {
            run_id: w.run_id.clone(),
            workers: w.config.workers,
            gpu_uuid: w.gpu.uuid.clone(),
            mode: w.mode.clone(),
        };
        groups.entry(key).or_default().push(w);
    }
    for members in groups.values_mut() {
        members.sort_by_key(|w| w.worker);
    }
    groups
}

/// The workers of one run, mode and worker count across GPUs.
#[derive(Default)]
struct RunSpread {
    gpus: Vec<String>,
    reported: u32,
    complete: u32,
}

/// Groups, summarizes and compares.
pub fn analyze(workers: &[Worker]) -> Analysis {
    let groups = group_workers(workers);
    let mut warnings = Vec::new();
    // The workers of one run, mode and count, whichever GPU they ran on: the run is complete when all of them
    // reported, and spread over GPUs when they ran on more than one.
    let mut run_wide: BTreeMap<(String, u32, String), RunSpread> = BTreeMap::new();
    for (key, members) in &groups {
        let spread = run_wide.entry((key.run_id.clone(), key.workers, key.mode.clone())).or_default();
        spread.gpus.push(key.gpu_uuid.clone());
        spread.reported += members.len() as u32;
        spread.complete += members.iter().filter(|w| w.status.complete).count() as u32;
    }
    for ((run, workers, mode), RunSpread { gpus, .. }) in &run_wide {
        if gpus.len() > 1 {
            warnings.push(Warning {
                kind: WarningKind::SpreadOverGpus,
                run_id: run.clone(),
                subject: format!("{mode} x{workers} on {} GPUs", gpus.len()),
                text: format!(
                    "run {run}, mode {mode}, {workers} workers: workers ran on {} different GPUs ({}), so they did not share one; each GPU is reported on its own",
                    gpus.len(),
                    gpus.join(", ")
                ),
            });
        }
    }
    let solo_latency = |key: &GroupKey| -> Option<f64> {
        ["timeslice", "unverified", "mps"].iter().find_map(|mode| {
            let solo = GroupKey {
                run_id: key.run_id.clone(),
                workers: 1,
                gpu_uuid: key.gpu_uuid.clone(),
                mode: mode.to_string(),
            };
            let members = groups.get(&solo)?;
            let mut h = histogram::new_latency_histogram();
            for w in members {
                let _ = histogram::merge(&mut h, &w.histogram);
            }
            Some(mean_latency(&h))
        })
    };
    let mut summaries: Vec<GroupSummary> =
        groups.iter().map(|(key, members)| summarize_group(key.clone(), members, solo_latency(key))).collect();
    for g in &mut summaries {
        let spread = &run_wide[&(g.key.run_id.clone(), g.key.workers, g.key.mode.clone())];
        g.complete = spread.reported == g.key.workers && spread.complete == spread.reported;
    }
    for ((run, workers, mode), RunSpread { reported, complete, .. }) in &run_wide {
        if !(reported == workers && complete == reported) {
            warnings.push(Warning {
                kind: WarningKind::Incomplete,
                run_id: run.clone(),
                subject: format!("{mode} x{workers} ({reported} reported, {complete} complete)"),
                text: format!(
                    "run {run}, mode {mode}: {reported} of {workers} workers reported, {complete} complete; figures cover what was recorded"
                ),
            });
        }
    }
    for g in &summaries {
        if g.key.mode == "mps" && g.verified_workers < g.workers_reported {
            warnings.push(Warning {
                kind: WarningKind::Unverified,
                run_id: g.key.run_id.clone(),
                subject: format!("mps x{} ({} of {})", g.key.workers, g.workers_reported - g.verified_workers, g.workers_reported),
                text: format!(
                    "run {}, {} workers: {} of {} 'mps' workers were NOT verified as MPS clients; their numbers may be time-slicing",
                    g.key.run_id, g.key.workers, g.workers_reported - g.verified_workers, g.workers_reported
                ),
            });
        }
        match &g.conditions {
            Some(c) if !c.problems.is_empty() => warnings.push(Warning {
                kind: WarningKind::Conditions,
                run_id: g.key.run_id.clone(),
                subject: format!("{} x{}: {}", g.key.mode, g.key.workers, c.problems.join("; ")),
                text: format!(
                    "run {}, mode {}, {} workers: {}",
                    g.key.run_id,
                    g.key.mode,
                    g.key.workers,
                    c.problems.join("; ")
                ),
            }),
            Some(c) if c.source != "nvml" => warnings.push(Warning {
                kind: WarningKind::NoTelemetry,
                run_id: g.key.run_id.clone(),
                subject: format!("{} x{}", g.key.mode, g.key.workers),
                text: format!("run {}, mode {}, {} workers: {}", g.key.run_id, g.key.mode, g.key.workers, c.source),
            }),
            _ => {}
        }
        for w in groups[&g.key].iter() {
            let Some(t) = &w.tenant else { continue };
            let subject = format!("{} x{} worker {}", g.key.mode, g.key.workers, w.worker);
            let mut say = |text: String| {
                warnings.push(Warning {
                    kind: WarningKind::Command,
                    run_id: g.key.run_id.clone(),
                    subject: subject.clone(),
                    text: format!("run {}, {subject}: {text}", g.key.run_id),
                })
            };
            if t.ending == "killed" {
                say("its command ignored SIGTERM at the window's end and was killed after the grace period".into());
            }
            if w.neighbour_only() && t.reports {
                say(format!("its command is {}", neighbour_text(w)));
            }
        }
        if g.latency.samples > 0 && !g.latency.enough_for(0.99) {
            warnings.push(Warning {
                kind: WarningKind::FewSamples,
                run_id: g.key.run_id.clone(),
                subject: format!("{} x{} (n={})", g.key.mode, g.key.workers, g.latency.samples),
                text: format!(
                    "run {}, mode {}, {} workers: {} samples are too few for a meaningful p99 (need {})",
                    g.key.run_id, g.key.mode, g.key.workers, g.latency.samples, 1000
                ),
            });
        }
    }
    let mut comparisons = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for key in groups.keys() {
        let base = (key.run_id.clone(), key.workers, key.gpu_uuid.clone());
        if !seen.insert(base.clone()) {
            continue;
        }
        let find = |mode: &str| {
            let k = GroupKey { run_id: base.0.clone(), workers: base.1, gpu_uuid: base.2.clone(), mode: mode.into() };
            groups
                .get(&k)
                .map(|m| (group_rates(m, Clock::common(m.iter().copied())), summaries.iter().find(|s| s.key == k)))
        };
        let (ts, mps, streams) = (find("timeslice"), find("mps"), find("streams"));
        if [&ts, &mps, &streams].iter().filter(|m| m.is_some()).count() < 2 {
            continue;
        }
        let seed = base.1 as u64;
        let ratio = |a: &Option<(Vec<f64>, _)>, b: &Option<(Vec<f64>, _)>| match (a, b) {
            (Some((ra, _)), Some((rb, _))) => stats::ratio_of_means(ra, rb, RESAMPLES, seed),
            _ => None,
        };
        let p99 = match (&mps, &ts) {
            (Some((_, Some(m))), Some((_, Some(t)))) if t.latency.p99_ns > 0 => {
                Some(m.latency.p99_ns as f64 / t.latency.p99_ns as f64)
            }
            _ => None,
        };
        comparisons.push(Comparison {
            run_id: base.0.clone(),
            workers: base.1,
            gpu_uuid: base.2.clone(),
            mps_over_timeslice: ratio(&mps, &ts),
            mps_over_streams: ratio(&mps, &streams),
            timeslice_over_streams: ratio(&ts, &streams),
            p99_mps_over_timeslice: p99,
        });
    }
    Analysis { groups: summaries, comparisons, warnings }
}

#[cfg(test)]
#[path = "analysis_tests.rs"]
pub mod tests;
