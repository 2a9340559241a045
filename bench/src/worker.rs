//! The measuring loop: launch, wait, record, repeat. One lane per CUDA stream; several lanes of one process run
//! on their own threads (the multi-stream ceiling). The loop only stores numbers in pre-sized buffers; encoding
//! and everything slow happens after it.

use crate::arrivals::{Arrivals, Schedule};
use crate::error::{Error, Result};
use crate::gpu::KernelLane;
use crate::result::histogram::{self, LatencyHistogram};
use crate::result::records::KernelRecord;
use std::time::{Duration, Instant};

/// When a lane stops recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    AfterKernels(u64),
    AfterDuration(Duration),
}

/// What every lane of a process does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopPlan {
    pub stop: Stop,
    /// Unrecorded launches before the start instant.
    pub warmup: u32,
    /// Inject a GPU fault (an illegal address) after this many recorded kernels.
    pub fault_after: Option<u64>,
    /// Closed loop, or an open loop at a target rate.
    pub arrivals: Arrivals,
}

/// Device stamps are read back at least this often, so a run that dies keeps what it recorded.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl LoopPlan {
    /// Stamp slots a lane needs before its first read-back: all kernels of a counted run, up to a cap.
    pub fn stamp_capacity(&self) -> usize {
        const CAP: u64 = 65_536;
        match self.stop {
            Stop::AfterKernels(n) => n.clamp(1, CAP) as usize,
            Stop::AfterDuration(_) => CAP as usize,
        }
    }
}

/// What one lane recorded.
pub struct LaneRecording {
    pub records: Vec<KernelRecord>,
    pub histogram: LatencyHistogram,
    /// Wall-clock time (Unix ns) of host offset 0.
    pub host_base_unix_ns: u64,
    /// Why the lane stopped early, if it did.
    pub error: Option<Error>,
}

impl LaneRecording {
    /// A lane that recorded nothing (its worker was stopped before measuring began).
    pub fn empty(host_base_unix_ns: u64) -> LaneRecording {
        LaneRecording { records: vec![], histogram: histogram::new_latency_histogram(), host_base_unix_ns, error: None }
    }
}

/// Host times of kernels whose device stamps are still on the GPU.
struct Pending {
    host: Vec<(u64, u64)>,
}

impl Pending {
    /// Moves the pending kernels into `records`, pairing them with their device stamps in launch order.
    fn flush(&mut self, lane: &mut KernelLane, records: &mut Vec<KernelRecord>) -> Result<()> {
        let intervals = lane.take_intervals(self.host.len())?;
        for (i, ((submit_ns, latency_ns), interval)) in self.host.drain(..).zip(intervals).enumerate() {
            let interval = interval.ok_or_else(|| {
                Error::new(format!("kernel {} left no device stamp", records.len() + i))
                    .fix("this is a bug in sharebench's kernels or a GPU fault; rerun and report it")
            })?;
            records.push(KernelRecord {
                submit_ns,
                latency_ns,
                device_start_ns: interval.start_ns,
                device_end_ns: interval.end_ns,
                sm_count: interval.sm_count,
            });
        }
        Ok(())
    }
}

/// Environment variable that makes workers print progress lines on stderr (set by `compare`).
pub const PROGRESS_ENV: &str = "SHAREBENCH_PROGRESS";
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Progress lines for a parent process: `sharebench-progress <worker> <done> <total|-> <elapsed_ms>`.
struct Progress {
    worker: u32,
    total: Option<u64>,
}

impl Progress {
    fn from_env(worker: u32, plan: &LoopPlan) -> Option<Progress> {
        std::env::var_os(PROGRESS_ENV)?;
        let total = match plan.stop {
            Stop::AfterKernels(n) => Some(n),
            Stop::AfterDuration(_) => None,
        };
        Some(Progress { worker, total })
    }

    fn report(&self, done: u64, elapsed: Duration) {
        let total = self.total.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
        eprintln!("sharebench-progress {} {done} {total} {}", self.worker, elapsed.as_millis());
    }
}

/// Parses a progress line: (worker, done, total, elapsed ms).
pub fn parse_progress(line: &str) -> Option<(u32, u64, Option<u64>, u64)> {
    let mut w = line.strip_prefix("sharebench-progress ")?.split_whitespace();
    Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?, w.next()?.parse().ok(), w.next()?.parse().ok()?))
}

/// Launches the unrecorded warm-up kernels.
pub fn warm_up(lane: &KernelLane, plan: &LoopPlan) -> Result<()> {
    for _ in 0..plan.warmup {
        lane.launch(None)?;
        lane.synchronize()?;
    }
    Ok(())
}

/// Waits until `start` (a shared start instant), sleeping most of the way and spinning the last 200 us.
pub fn wait_until(start: Instant) {
    let now = Instant::now();
    if start > now + Duration::from_micros(200) {
        std::thread::sleep(start - now - Duration::from_micros(200));
    }
    while Instant::now() < start {
        std::hint::spin_loop();
    }
}

/// The measuring loop: from `start`, launch one kernel (at once, or at its intended start in an open loop), wait
/// for it, record it, until the plan says stop. Records of an open loop carry the intended start as submit time.
pub fn measure_loop(lane: &mut KernelLane, plan: &LoopPlan, start: Instant, lane_label: u32) -> LaneRecording {
    wait_until(start);
    let expected = match plan.stop {
        Stop::AfterKernels(n) => n as usize,
        Stop::AfterDuration(_) => plan.stamp_capacity(),
    };
    let mut records = Vec::with_capacity(expected);
    let mut pending = Pending { host: Vec::with_capacity(lane.capacity()) };
    let mut hist = histogram::new_latency_histogram();
    let base = Instant::now();
    let host_base_unix_ns = crate::host::unix_now_ns();
    let mut launched: u64 = 0;
    let mut error = None;
    let progress = Progress::from_env(lane_label, plan);
    let mut next_progress = base;
    let mut schedule = Schedule::new(plan.arrivals);
    let (mut last_flush, mut last_completed) = (base, base);
    loop {
        let done = match plan.stop {
            Stop::AfterKernels(n) => launched >= n,
            Stop::AfterDuration(d) => base.elapsed() >= d,
        };
        if done {
            break;
        }
        // SIGTERM (a Pod deleted, a node drained): stop at once; what was recorded is kept and written, and
        // the worker's lifecycle marks the result terminated.
        if crate::termination::requested() {
            break;
        }
        // Read the stamps back when the slots are full, at least every FLUSH_EVERY, and before an injected fault
        // (the fault is sticky: no stamp can be read after it).
        let fault_now = plan.fault_after == Some(launched);
        let flush_due = pending.host.len() == lane.capacity()
            || (!pending.host.is_empty() && last_completed - last_flush >= FLUSH_EVERY)
            || fault_now;
        if flush_due {
            if let Err(e) = pending.flush(lane, &mut records) {
                error = Some(e);
                break;
            }
            last_flush = Instant::now();
        }
        if fault_now {
            let fault = lane.launch_fault().err().unwrap_or_else(|| Error::new("the injected fault raised no error"));
            error = Some(Error::new(format!("injected GPU fault after {launched} kernels: {}", fault.problem)));
            break;
        }
        let slot = pending.host.len();
        // Open loop: wait for the request's intended start, and measure latency from it (queueing counts).
        let intended = schedule.next_offset_ns().map(|ns| base + Duration::from_nanos(ns));
        if let Some(at) = intended {
            wait_until(at);
        }
        let submit = Instant::now();
        let outcome = lane.launch(Some(slot)).and_then(|_| lane.synchronize());
        let completed = Instant::now();
        if let Err(e) = outcome {
            error = Some(e);
            break;
        }
        let submit = intended.unwrap_or(submit);
        let latency_ns = (completed - submit).as_nanos() as u64;
        histogram::record(&mut hist, latency_ns);
        pending.host.push(((submit - base).as_nanos() as u64, latency_ns));
        launched += 1;
        last_completed = completed;
        if let Some(p) = &progress {
            if completed >= next_progress {
                p.report(launched, base.elapsed());
                next_progress = completed + PROGRESS_EVERY;
            }
        }
    }
    if let Some(p) = &progress {
        p.report(launched, base.elapsed());
    }
    if !pending.host.is_empty() {
        let lost = pending.host.len();
        if let Err(e) = pending.flush(lane, &mut records) {
            let e = Error::new(format!("{lost} kernels' device stamps could not be read back: {}", e.problem));
            error = Some(error.unwrap_or(e));
        }
    }
    LaneRecording { records, histogram: hist, host_base_unix_ns, error }
}

/// Runs every lane's closed loop from the same start instant, one thread per lane.
pub fn run_lanes(lanes: &mut [KernelLane], labels: &[u32], plan: &LoopPlan, start: Instant) -> Vec<LaneRecording> {
    if let [lane] = lanes {
        return vec![measure_loop(lane, plan, start, labels[0])];
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .iter_mut()
            .zip(labels)
            .map(|(lane, &label)| scope.spawn(move || measure_loop(lane, plan, start, label)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| LaneRecording {
                    records: Vec::new(),
                    histogram: histogram::new_latency_histogram(),
                    host_base_unix_ns: 0,
                    error: Some(Error::new("a lane's thread panicked; its records are lost")),
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_capacity_covers_counted_runs_up_to_a_cap() {
        let plan = |stop| LoopPlan { stop, warmup: 0, fault_after: None, arrivals: Arrivals::Closed };
        assert_eq!(plan(Stop::AfterKernels(40)).stamp_capacity(), 40);
        assert_eq!(plan(Stop::AfterKernels(0)).stamp_capacity(), 1);
        assert_eq!(plan(Stop::AfterKernels(10_000_000)).stamp_capacity(), 65_536);
        assert_eq!(plan(Stop::AfterDuration(Duration::from_secs(1))).stamp_capacity(), 65_536);
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(parse_progress("sharebench-progress 3 120 1000 250"), Some((3, 120, Some(1000), 250)));
        assert_eq!(parse_progress("sharebench-progress 0 5 - 10"), Some((0, 5, None, 10)));
        assert_eq!(parse_progress("something else"), None);
    }

    #[test]
    fn wait_until_does_not_return_early() {
        let start = Instant::now() + Duration::from_millis(2);
        wait_until(start);
        assert!(Instant::now() >= start);
    }
}
