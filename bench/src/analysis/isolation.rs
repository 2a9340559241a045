//! What a faulting or memory-greedy neighbour did to the other workers of its run, in words (pure): did they
//! survive, what did their p99 do, how long until they were served again after the fault, what the neighbour's
//! memory hold got and what stopped it. Measured on an H100 (facts file): under MPS a client's GPU fault took
//! the other clients down with it; under time-slicing only the faulting process failed. The analysis reports
//! what the results show, for either mode.

use crate::load::{Clock, Worker};
use serde::Serialize;
use std::collections::BTreeMap;

/// One run's (mode, worker count, repeat) neighbour event and what it did to the others.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IsolationVerdict {
    pub run_id: String,
    pub mode: String,
    pub workers: u32,
    pub repeat: u32,
    /// `fault` or `memory`.
    pub event: &'static str,
    /// The workers beside the neighbour, and how many of them completed.
    pub others: u32,
    pub others_survived: u32,
    /// After a fault: the longest any survivor waited from the fault to its next completed kernel or request.
    pub served_again_ms: Option<f64>,
    /// The verdict in sentences.
    pub lines: Vec<String>,
}

/// The verdicts of every run with a worker that raised an injected fault or held memory.
pub fn verdicts(workers: &[Worker]) -> Vec<IsolationVerdict> {
    let mut runs: BTreeMap<(String, String, u32, u32), Vec<&Worker>> = BTreeMap::new();
    for w in workers {
        let key = (w.run_id.clone(), w.mode.clone(), w.config.workers, w.config.repeat);
        runs.entry(key).or_default().push(w);
    }
    let mut out = Vec::new();
    for ((run_id, mode, n, repeat), members) in runs {
        let verdict = |event, others: &[&Worker], served_again_ms, lines| IsolationVerdict {
            run_id: run_id.clone(),
            mode: mode.clone(),
            workers: n,
            repeat,
            event,
            others: others.len() as u32,
            others_survived: others.iter().filter(|w| w.status.complete).count() as u32,
            served_again_ms,
            lines,
        };
        let (faulting, others): (Vec<&Worker>, Vec<&Worker>) = members.iter().partition(|w| injected(w));
        if let Some(f) = faulting.first() {
            let (served, lines) = after_fault(&mode, f, &others);
            out.push(verdict("fault", &others, served, lines));
            continue;
        }
        let (holders, others): (Vec<&Worker>, Vec<&Worker>) = members.iter().partition(|w| held(w).is_some());
        if !holders.is_empty() {
            let mut lines: Vec<String> = holders.iter().filter_map(|h| hold_line(&mode, h)).collect();
            lines.push(survivors_line(&others, "the hold"));
            out.push(verdict("memory", &others, None, lines));
        }
    }
    out
}

fn injected(w: &Worker) -> bool {
    w.status.error.as_deref().is_some_and(|e| e.starts_with("injected GPU fault"))
}

fn held(w: &Worker) -> Option<&crate::result::memory::MemoryHold> {
    w.gpu.context_memory.as_ref()?.held.as_ref()
}

fn hold_line(mode: &str, h: &Worker) -> Option<String> {
    let m = h.gpu.context_memory.as_ref()?;
    let (text, left) = (crate::mps::memory::hold_text(m)?, crate::mps::memory::left_for_others_text(m)?);
    Some(format!("{mode}: worker {} {text}; {left}", h.worker))
}

/// How many of `others` completed, naming the first failure.
fn survivors_line(others: &[&Worker], event: &str) -> String {
    let survived = others.iter().filter(|w| w.status.complete).count();
    let failed: Vec<String> = others
        .iter()
        .filter(|w| !w.status.complete)
        .map(|w| format!("worker {}: {}", w.worker, w.status.error.as_deref().unwrap_or("incomplete")))
        .collect();
    match failed.first() {
        None if others.is_empty() => format!("no other worker ran beside it (nothing to survive {event})"),
        None => format!("{survived} of {} other workers survived {event}", others.len()),
        Some(first) => format!(
            "{survived} of {} other workers survived {event}; {} did not (first: {first})",
            others.len(),
            failed.len()
        ),
    }
}

/// p99 of the latencies of `w`'s records that ended before (`true`) or after `at` on the host clock.
fn p99_around(w: &Worker, at: u64, before: bool) -> Option<f64> {
    let mut latencies: Vec<f64> = w
        .records
        .iter()
        .enumerate()
        .filter(|(i, _)| (w.records.interval(*i, Clock::Host).1 < at) == before)
        .map(|(_, r)| r.latency_ns as f64)
        .collect();
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_by(f64::total_cmp);
    Some(super::stats::percentile_of_sorted(&latencies, 0.99))
}

/// The median time between two of `w`'s completions on the host clock (0 with fewer than two).
fn usual_gap_ns(w: &Worker) -> f64 {
    let ends: Vec<u64> = (0..w.records.len()).map(|i| w.records.interval(i, Clock::Host).1).collect();
    let mut gaps: Vec<u64> = ends.windows(2).map(|p| p[1].saturating_sub(p[0])).collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied().unwrap_or(0) as f64
}

/// The survivors' wait from the fault to their next completion, and the sentences.
fn after_fault(mode: &str, faulty: &Worker, others: &[&Worker]) -> (Option<f64>, Vec<String>) {
    // The fault kernel was launched once the faulting worker's last recorded kernel completed.
    let at = match faulty.records.len() {
        0 => faulty.finished_unix_ns,
        n => faulty.records.interval(n - 1, Clock::Host).1,
    };
    let mut lines = vec![format!(
        "{mode}: worker {}'s GPU fault ({}) at {:.3} s into its window",
        faulty.worker,
        faulty.status.error.as_deref().unwrap_or("injected"),
        at.saturating_sub(faulty.started_unix_ns) as f64 / 1e9
    )];
    lines.push(survivors_line(others, "the fault"));
    let mut served: Vec<f64> = Vec::new();
    for w in others.iter().filter(|w| w.status.complete) {
        let next = (0..w.records.len()).map(|i| w.records.interval(i, Clock::Host).1).find(|&end| end > at);
        let Some(next) = next else { continue };
        let wait_ms = (next - at) as f64 / 1e6;
        served.push(wait_ms);
        let p99 = |before| p99_around(w, at, before).map(crate::units::format_ns).unwrap_or("-".into());
        lines.push(format!(
            "worker {}: served again {wait_ms:.2} ms after the fault (its usual gap between completions: {:.2} ms); \
             its p99 {} before the fault, {} after",
            w.worker,
            usual_gap_ns(w) / 1e6,
            p99(true),
            p99(false)
        ));
    }
    (served.iter().copied().reduce(f64::max), lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;
    use crate::result::RunStatus;

    fn failed(mut w: Worker, error: &str) -> Worker {
        w.status = RunStatus { complete: false, error: Some(error.into()), terminated: None };
        w
    }

    #[test]
    fn a_fault_names_who_survived_and_how_soon_the_survivors_were_served_again() {
        // Worker 0 faults after 100 kernels; worker 1 is torn down with it; worker 2 keeps going.
        let faulty = failed(synthetic("mps", 3, 0, 0, 100, 1_000_000, 0), "injected GPU fault after 100 kernels: X");
        let torn = failed(synthetic("mps", 3, 1, 0, 90, 1_000_000, 0), "waiting for the kernel failed: X");
        let survivor = synthetic("mps", 3, 2, 0, 400, 1_000_000, 0);
        let v = verdicts(&[faulty, torn, survivor]);
        assert_eq!(v.len(), 1);
        let v = &v[0];
        assert_eq!((v.event, v.others, v.others_survived), ("fault", 2, 1));
        assert!(v.lines[1].starts_with("1 of 2 other workers survived the fault; 1 did not (first: worker 1: waiting"));
        let served = v.served_again_ms.unwrap();
        assert!(served > 0.0 && served <= 1.0 + 1e-9, "the survivor's next kernel ends within one kernel: {served}");
        assert!(v.lines[2].contains("worker 2: served again") && v.lines[2].contains("usual gap"), "{}", v.lines[2]);
        let alone = failed(synthetic("mps", 1, 0, 0, 100, 1_000_000, 0), "injected GPU fault after 100 kernels: X");
        assert_eq!(verdicts(&[alone])[0].lines[1], "no other worker ran beside it (nothing to survive the fault)");
    }

    #[test]
    fn a_memory_hold_says_what_stopped_it_and_what_it_left_for_the_others() {
        use crate::mps::memory::{resolve, MemoryHold};
        let mut greedy = synthetic("timeslice", 2, 1, 0, 100, 1_000_000, 0);
        let mut m = resolve((130 << 30, 140 << 30), false, None, None);
        m.held = Some(MemoryHold {
            asked: "all".into(),
            held_bytes: 139 << 30,
            stopped_by: Some("all it could get: allocating failed: CUDA_ERROR_OUT_OF_MEMORY".into()),
            free_after_bytes: 1 << 29,
        });
        greedy.gpu.context_memory = Some(m);
        let victim = synthetic("timeslice", 2, 0, 0, 100, 1_000_000, 0);
        let v = verdicts(&[victim, greedy]);
        assert_eq!((v[0].event, v[0].others_survived), ("memory", 1));
        assert!(v[0].lines[0].contains("worker 1 held 139.0 GiB (asked all)"), "{}", v[0].lines[0]);
        assert!(v[0].lines[0].contains("stopped by the GPU's free memory"), "{}", v[0].lines[0]);
        assert!(v[0].lines[0].ends_with("0.5 GiB was left free for every other process on the GPU"));
        assert_eq!(v[0].lines[1], "1 of 1 other workers survived the hold");
        assert!(verdicts(&[synthetic("mps", 1, 0, 0, 10, 1000, 0)]).is_empty(), "no neighbour event, no verdict");
    }
}
