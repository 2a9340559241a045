//! Capacity planning arithmetic (pure): judge one measured point against a p99 SLO, and find the most Pods per
//! GPU a mode sustains. A point whose percentile rests on too few samples is marked invalid, not passed, after
//! MLPerf's rule that a tail percentile needs enough samples beyond it to mean something.

use super::stats::LatencySummary;
use crate::load::{Clock, Worker};
use crate::result::histogram;
use serde::Serialize;

/// Fewest samples behind a p99 (about ten beyond the 99th percentile).
pub const MIN_SAMPLES_P99: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// p99 within the SLO, enough samples, every worker complete.
    Meets,
    /// p99 above the SLO.
    Violates,
    /// Too few samples for the p99 to mean anything.
    Invalid,
    /// Workers failed, so the point says nothing about the SLO.
    Failed,
}

/// One point of the search: a mode at a Pod count.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub mode: String,
    pub pods: u32,
    pub processes: u32,
    /// Latency of the SLO group, merged over its Pods.
    pub slo_latency: LatencySummary,
    /// Requests per second the SLO group completed (all its Pods).
    pub slo_group_throughput: f64,
    /// Requests per second all groups completed.
    pub total_throughput: f64,
    /// Offered requests per second per Pod of the swept groups (open loop).
    pub rate_per_pod: Option<f64>,
    pub verdict: Verdict,
    pub failures: Vec<String>,
    /// What the GPU telemetry of the point says went wrong around it (clocks, throttling, other processes):
    /// the verdict stands, but it was reached under these conditions.
    #[serde(default)]
    pub conditions: Vec<String>,
}

pub fn judge(latency: &LatencySummary, slo_ns: u64, complete: bool) -> Verdict {
    if !complete {
        Verdict::Failed
    } else if latency.samples < MIN_SAMPLES_P99 {
        Verdict::Invalid
    } else if latency.p99_ns > slo_ns {
        Verdict::Violates
    } else {
        Verdict::Meets
    }
}

/// Requests per second of these workers over their common makespan (on the device clock, or on the hosts' when
/// a foreign command is among them).
fn throughput<'a>(workers: impl Iterator<Item = &'a Worker> + Clone) -> f64 {
    let members: Vec<&Worker> = workers.collect();
    let kernels: usize = members.iter().map(|w| w.records.len()).sum();
    match super::span(&members, Clock::common(members.iter().copied())) {
        (first, last) if last > first => kernels as f64 / ((last - first) as f64 / 1e9),
        _ => 0.0,
    }
}

/// Summarizes one point from its workers' results.
pub fn point(
    mode: &str,
    pods: u32,
    processes: u32,
    slo_group: &str,
    slo_ns: u64,
    workers: &[Worker],
    mut failures: Vec<String>,
) -> Point {
    // Pods that landed on different GPUs did not share one: the point says nothing about sharing.
    let gpus: std::collections::BTreeSet<&str> = workers.iter().map(|w| w.gpu.uuid.as_str()).collect();
    if gpus.len() > 1 {
        failures.push(format!(
            "the workers ran on {} GPUs ({}), so they did not share one: give the Pods one GPU (e.g. one DRA claim shared by all)",
            gpus.len(),
            gpus.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let in_slo_group = || workers.iter().filter(|w| w.group.as_deref() == Some(slo_group));
    let mut merged = histogram::new_latency_histogram();
    for w in in_slo_group() {
        let _ = histogram::merge(&mut merged, &w.histogram);
    }
    let slo_latency = LatencySummary::of(&merged);
    let complete =
        failures.is_empty() && workers.len() as u32 == processes && workers.iter().all(|w| w.status.complete);
    Point {
        mode: mode.to_string(),
        pods,
        processes,
        slo_latency,
        slo_group_throughput: throughput(in_slo_group()),
        total_throughput: throughput(workers.iter()),
        rate_per_pod: None,
        verdict: judge(&slo_latency, slo_ns, complete),
        failures,
        conditions: {
            let pids: Vec<u32> = workers.iter().flat_map(|w| w.own_pids()).collect();
            workers
                .iter()
                .filter_map(|w| w.telemetry.as_ref())
                .flat_map(|t| super::conditions::judge(t, &pids).problems)
                .collect()
        },
    }
}

/// What one worker's GPU fault did to the others at one point.
#[derive(Debug, Clone, Serialize)]
pub struct BlastRadius {
    pub mode: String,
    pub pods: u32,
    pub processes: u32,
    /// Workers other than the faulting one that failed.
    pub others_failed: u32,
    pub others: u32,
    pub errors: Vec<String>,
}

/// Counts the casualties of an injected fault (the faulting worker reports "injected GPU fault").
pub fn blast_radius(point: &Point, workers: &[Worker]) -> BlastRadius {
    let injected = |w: &&Worker| w.status.error.as_deref().is_some_and(|e| e.starts_with("injected GPU fault"));
    let others: Vec<&Worker> = workers.iter().filter(|w| !injected(w)).collect();
    let failed: Vec<&&Worker> = others.iter().filter(|w| !w.status.complete).collect();
    // Workers that wrote no result at all failed too.
    let missing = point.processes.saturating_sub(workers.len() as u32);
    BlastRadius {
        mode: point.mode.clone(),
        pods: point.pods,
        processes: point.processes,
        others_failed: failed.len() as u32 + missing,
        others: point.processes.saturating_sub(1),
        errors: failed.iter().filter_map(|w| w.status.error.clone()).collect(),
    }
}

/// The most Pods a mode sustains: the largest count that meets the SLO with every smaller count meeting it too.
pub fn max_pods(points: &[Point], mode: &str) -> Option<u32> {
    let mut ordered: Vec<&Point> = points.iter().filter(|p| p.mode == mode).collect();
    ordered.sort_by_key(|p| p.pods);
    ordered.iter().take_while(|p| p.verdict == Verdict::Meets).last().map(|p| p.pods)
}

/// The search for the highest request rate per Pod that meets the SLO at a fixed Pod count: double (or halve)
/// from the start until the SLO is bracketed, then bisect until the bracket is within 5% or 12 points ran.
/// A point that does not clearly meet the SLO (violates, fails, too few samples) counts against the rate.
#[derive(Debug, Clone)]
pub struct RateSearch {
    start: f64,
    highest_meeting: Option<f64>,
    lowest_failing: Option<f64>,
    points: u32,
}

impl RateSearch {
    pub const MAX_POINTS: u32 = 12;

    pub fn new(start: f64) -> RateSearch {
        RateSearch { start, highest_meeting: None, lowest_failing: None, points: 0 }
    }

    /// The next rate to measure, or `None` when the search is done.
    pub fn next_rate(&self) -> Option<f64> {
        if self.points >= Self::MAX_POINTS {
            return None;
        }
        match (self.highest_meeting, self.lowest_failing) {
            (None, None) => Some(self.start),
            (Some(lo), None) => Some(lo * 2.0),
            (None, Some(hi)) if hi / 2.0 >= 0.1 => Some(hi / 2.0),
            (None, Some(_)) => None,
            (Some(lo), Some(hi)) if hi / lo > 1.05 => Some((lo + hi) / 2.0),
            (Some(_), Some(_)) => None,
        }
    }

    pub fn record(&mut self, rate: f64, verdict: Verdict) {
        self.points += 1;
        if verdict == Verdict::Meets {
            self.highest_meeting = Some(self.highest_meeting.map_or(rate, |r| r.max(rate)));
        } else {
            self.lowest_failing = Some(self.lowest_failing.map_or(rate, |r| r.min(rate)));
        }
    }

    /// The highest rate measured to meet the SLO.
    pub fn answer(&self) -> Option<f64> {
        self.highest_meeting
    }
}

/// The Pod counts the search tries, up to `max` (a coarse doubling with the steps between).
pub fn pod_counts(max: u32) -> Vec<u32> {
    [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48].into_iter().filter(|&n| n <= max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(samples: u64, p99_ms: f64) -> LatencySummary {
        LatencySummary { samples, p99_ns: (p99_ms * 1e6) as u64, ..Default::default() }
    }

    fn at(mode: &str, pods: u32, verdict: Verdict) -> Point {
        Point {
            mode: mode.into(),
            pods,
            processes: pods,
            slo_latency: summary(5000, 1.0),
            slo_group_throughput: 0.0,
            total_throughput: 0.0,
            rate_per_pod: None,
            verdict,
            failures: vec![],
            conditions: vec![],
        }
    }

    #[test]
    fn verdicts() {
        let slo = 2_000_000;
        assert_eq!(judge(&summary(5000, 1.5), slo, true), Verdict::Meets);
        assert_eq!(judge(&summary(5000, 2.5), slo, true), Verdict::Violates);
        assert_eq!(judge(&summary(999, 1.0), slo, true), Verdict::Invalid);
        assert_eq!(judge(&summary(5000, 1.0), slo, false), Verdict::Failed);
    }

    #[test]
    fn capacity_stops_at_the_first_point_that_does_not_meet_the_slo() {
        let points = [
            at("mps", 1, Verdict::Meets),
            at("mps", 2, Verdict::Meets),
            at("mps", 4, Verdict::Violates),
            at("mps", 8, Verdict::Meets),
            at("timeslice", 1, Verdict::Invalid),
            at("timeslice", 2, Verdict::Meets),
        ];
        assert_eq!(max_pods(&points, "mps"), Some(2));
        assert_eq!(max_pods(&points, "timeslice"), None);
        assert_eq!(pod_counts(10), vec![1, 2, 3, 4, 6, 8]);
    }

    #[test]
    fn the_rate_search_brackets_then_bisects() {
        // A GPU that meets the SLO up to 1300 requests/s per Pod.
        let mut search = RateSearch::new(200.0);
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            tried.push(rate);
            search.record(rate, if rate <= 1300.0 { Verdict::Meets } else { Verdict::Violates });
        }
        assert_eq!(&tried[..4], &[200.0, 400.0, 800.0, 1600.0]);
        let answer = search.answer().unwrap();
        assert!((1240.0..=1300.0).contains(&answer), "{answer} after {tried:?}");
        assert!(tried.len() as u32 <= RateSearch::MAX_POINTS);
        let mut never = RateSearch::new(100.0);
        while let Some(rate) = never.next_rate() {
            never.record(rate, Verdict::Invalid);
        }
        assert_eq!(never.answer(), None);
    }

    #[test]
    fn the_blast_radius_counts_the_other_casualties() {
        let mut faulty = crate::analysis::tests::synthetic("mps", 3, 0, 0, 10, 1000, 0);
        faulty.status =
            crate::result::RunStatus { complete: false, error: Some("injected GPU fault after 200 kernels: x".into()) };
        let mut hit = crate::analysis::tests::synthetic("mps", 3, 1, 0, 10, 1000, 0);
        hit.status = crate::result::RunStatus { complete: false, error: Some("CUDA_ERROR_ILLEGAL_ADDRESS".into()) };
        let fine = crate::analysis::tests::synthetic("mps", 3, 2, 0, 10, 1000, 0);
        let p = at("mps", 3, Verdict::Failed);
        let b = blast_radius(&p, &[faulty, hit, fine]);
        assert_eq!((b.others_failed, b.others), (1, 2));
        assert_eq!(b.errors, vec!["CUDA_ERROR_ILLEGAL_ADDRESS".to_string()]);
    }

    #[test]
    fn a_point_is_judged_on_its_slo_group_only() {
        let mut w = crate::analysis::tests::synthetic("mps", 2, 0, 0, 1200, 500_000, 0);
        w.group = Some("latency".into());
        let mut batch = crate::analysis::tests::synthetic("mps", 2, 1, 0, 10, 50_000_000, 0);
        batch.group = Some("batch".into());
        let p = point("mps", 1, 2, "latency", 1_000_000, &[w, batch], vec![]);
        assert_eq!(p.slo_latency.samples, 1200);
        assert_eq!(p.verdict, Verdict::Meets);
        assert!((p.slo_group_throughput - 2000.0).abs() < 1.0, "{}", p.slo_group_throughput);
        let failed = point("mps", 1, 3, "latency", 1_000_000, &[], vec![]);
        assert_eq!(failed.verdict, Verdict::Failed);
    }

    #[test]
    fn pods_on_different_gpus_fail_the_point() {
        let mut a = crate::analysis::tests::synthetic("mps", 2, 0, 0, 1200, 500_000, 0);
        a.group = Some("g".into());
        let mut b = a.clone();
        b.worker = 1;
        b.gpu.uuid = "GPU-other".into();
        let p = point("mps", 2, 2, "g", 1_000_000, &[a, b], vec![]);
        assert_eq!(p.verdict, Verdict::Failed);
        assert!(p.failures[0].contains("ran on 2 GPUs"), "{:?}", p.failures);
    }
}
