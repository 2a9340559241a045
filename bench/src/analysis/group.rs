//! One repeat of one group summarised: throughput (with its within-run interval over time windows), overlap on
//! the group's common clock, latency, fairness and each worker's own figures. Pure; the records are read once,
//! in the overlap sweep and the window count (each on all cores), everything else comes from each lane's totals.

use super::stats::{self, Estimate, LatencySummary};
use super::{conditions, figures, overlap, GroupKey, GroupSummary, WorkerSummary, RESAMPLES, WINDOWS};
use crate::load::{Clock, Worker};
use crate::result::histogram::{self, LatencyHistogram};
use crate::result::SharingVerdict;
use crate::workload::KernelShape;

fn verified(mode: &str, verdict: SharingVerdict) -> bool {
    match mode {
        "mps" => verdict == SharingVerdict::MpsJoined,
        "timeslice" | "streams" => matches!(verdict, SharingVerdict::NoDaemon | SharingVerdict::MpsNotJoined),
        _ => false,
    }
}

pub(super) fn mean_latency(h: &LatencyHistogram) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.mean()
    }
}

/// One repeat of one group summarised, with the window rates its comparisons resample.
pub(super) struct Summarised {
    pub summary: GroupSummary,
    pub window_rates: Vec<f64>,
}

/// A worker's records as intervals on one clock, for the overlap sweep.
struct OnClock<'a> {
    worker: &'a Worker,
    clock: Clock,
}

impl overlap::Lane for OnClock<'_> {
    fn len(&self) -> usize {
        self.worker.records.len()
    }

    fn interval(&self, index: usize) -> overlap::Interval {
        self.worker.records.interval(index, self.clock)
    }

    fn in_order(&self) -> bool {
        self.worker.records.in_order(self.clock)
    }
}

pub(super) fn summarize_group(
    key: GroupKey,
    repeat: u32,
    members: &[&Worker],
    solo_mean_latency: Option<f64>,
) -> Summarised {
    let clock = Clock::common(members.iter().copied());
    let lanes: Vec<OnClock> = members.iter().map(|&worker| OnClock { worker, clock }).collect();
    let overlap = overlap::overlap(&lanes);
    let kernels: u64 = members.iter().map(|w| w.records.len() as u64).sum();
    let makespan_s = overlap.makespan_ns.max(1) as f64 / 1e9;
    let rates = group_rates(members, clock);
    let seed = key.workers as u64 * 7919 + key.mode.len() as u64;
    let mut kernels_per_s =
        stats::mean_estimate(&rates, RESAMPLES, seed).unwrap_or(Estimate { value: 0.0, ci_low: 0.0, ci_high: 0.0 });
    kernels_per_s.value = kernels as f64 / makespan_s;
    let merged = histogram::merged(members.iter().map(|w| &w.histogram));
    let per_worker: Vec<WorkerSummary> = members
        .iter()
        .map(|w| {
            let own = w.histogram.to_histogram();
            let span = match w.records.extent(clock) {
                Some(e) if e.last > e.first => (e.last - e.first) as f64 / 1e9,
                _ => f64::NAN,
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
                latency: LatencySummary::of(&own),
                mean_device_ns: w.device_stamps.then(|| w.records.mean_device_ns()),
                mean_sm_count: w.device_stamps.then(|| w.records.mean_sm_count()),
                neighbour: w.neighbour_only().then(|| neighbour_text(w)),
                slowdown_vs_solo: solo_mean_latency.map(|solo| mean_latency(&own) / solo),
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
    let has_requests = members.iter().any(|w| !w.neighbour_only());
    let flop_per_s = per_launch(KernelShape::flop_per_launch);
    let mut invalid = figures::invalid_reasons(overlap.makespan_ns, merged.len(), has_requests);
    invalid.extend(figures::above_peak(flop_per_s, &members[0].gpu));
    let summary = GroupSummary {
        repeat,
        invalid,
        gpu_name: members[0].gpu.name.clone(),
        driver_version: members[0].gpu.driver_version.clone(),
        started_unix_ns: members.iter().map(|w| w.started_unix_ns).min().unwrap_or(0),
        command_line: members[0].config.command_line.clone(),
        shape,
        command: members.iter().find_map(|w| w.config.command.clone()),
        clock,
        verified_workers: members.iter().filter(|w| verified(&key.mode, w.verdict)).count() as u32,
        workers_reported: members.len() as u32,
        alone_beside: members.iter().map(|w| w.config.alone_indices.len() as u32).max().unwrap_or(0),
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
        flop_per_s,
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
        memory: memory_text(members),
        ttft: streamed(members, |s| Some(&s.ttft)),
        tpot: streamed(members, |s| s.tpot.as_ref()),
        // Settled in `analyze`, which sees the solo run.
        ttft_p99_vs_solo: None,
        tpot_p99_vs_solo: None,
        tpot_p50_vs_solo: None,
        key,
    };
    Summarised { summary, window_rates: rates }
}

/// One streaming figure (TTFT or TPOT) over the members that reported it, exactly merged.
pub(crate) fn streamed(
    members: &[&Worker],
    figure: impl Fn(&crate::load::Streaming) -> Option<&histogram::Recorded>,
) -> Option<LatencySummary> {
    let parts: Vec<&histogram::Recorded> =
        members.iter().filter_map(|w| w.streaming.as_ref()).filter_map(&figure).collect();
    (!parts.is_empty()).then(|| LatencySummary::of(&histogram::merged(parts)))
}

/// What a Pod's context could use of the GPU's memory, from the first member that recorded it, counting a
/// command's CUDA processes (each gets the whole MPS limit).
fn memory_text(members: &[&Worker]) -> Option<String> {
    let w = members.iter().find(|w| w.gpu.context_memory.is_some())?;
    let processes = match &w.tenant {
        Some(t) => t.membership_at_ready.as_ref().map(|d| d.gpu_processes.len()).filter(|&n| n > 0),
        None => Some(1),
    };
    Some(crate::mps::memory::describe(w.gpu.context_memory.as_ref()?, processes))
}

/// A silent neighbour in words: how long its command ran and how it ended.
pub(crate) fn neighbour_text(w: &Worker) -> String {
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
    let extents = || members.iter().filter_map(|w| w.records.extent(clock));
    let first = extents().map(|e| e.first).min().unwrap_or(0);
    let last = extents().map(|e| e.last).max().unwrap_or(first);
    (first, last)
}

/// Kernels finishing in each of `WINDOWS` equal windows of the group's span, as rates (kernels/s): each worker's
/// counted on its own core, then added.
fn group_rates(members: &[&Worker], clock: Clock) -> Vec<f64> {
    let (first, last) = span(members, clock);
    let span = (last - first).max(1);
    let records: usize = members.iter().map(|w| w.records.len()).sum();
    let counts = crate::parallel::map_if(records > overlap::PARALLEL_ABOVE, members, |w| {
        let mut counts = [0u64; WINDOWS];
        for i in 0..w.records.len() {
            let end = w.records.interval(i, clock).1;
            counts[(((end - first) as u128 * WINDOWS as u128) / span as u128).min(WINDOWS as u128 - 1) as usize] += 1;
        }
        counts
    });
    let window_s = span as f64 / 1e9 / WINDOWS as f64;
    (0..WINDOWS).map(|i| counts.iter().map(|c| c[i]).sum::<u64>() as f64 / window_s).collect()
}
