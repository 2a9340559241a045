//! Capacity planning arithmetic (pure): judge one measured point against a p99 SLO over its repeats, and find
//! the most Pods per GPU a mode sustains. A point meets the SLO only when the upper bound of its p99 does: across
//! repeats (the 95% interval of `repeats`) where it ran more than once, else the distribution-free bound of its
//! one repeat; and every repeat's p99 must be within it. A point whose p99 has no bound (too few samples) is
//! invalid, not passed, after MLPerf LoadGen's rule that a tail percentile needs enough samples behind it.

use super::repeats::Spread;
use super::stats::LatencySummary;
use crate::load::{Clock, Worker};
use crate::result::histogram;
use serde::Serialize;

/// Samples a point's duration aims for behind its p99 (a bound exists from 368; 1000 gives a tighter one).
pub const MIN_SAMPLES_P99: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The p99's upper bound within the SLO, every repeat within it, every worker complete.
    Meets,
    /// p99 (or its upper bound) above the SLO.
    Violates,
    /// Too few samples for the p99 to have a bound.
    Invalid,
    /// Workers failed, so the point says nothing about the SLO.
    Failed,
}

/// What a point is judged against: the SLO group's p99 latency, and for a streaming (LLM) group optionally its
/// time-to-first-token and time-per-output-token p99s, each under the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slo {
    pub p99_ns: u64,
    pub ttft_p99_ns: Option<u64>,
    pub tpot_p99_ns: Option<u64>,
}

/// One streaming figure of a point against its SLO.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct FigureVerdict {
    /// `ttft` or `tpot`.
    pub figure: String,
    pub slo_ns: u64,
    /// The figure's p99, median over repeats (ns); `None`: no repeat reported it.
    pub p99_median_ns: Option<f64>,
    pub p99_upper_ns: Option<f64>,
    pub verdict: Verdict,
}

/// One repeat of a point.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RepeatPoint {
    pub repeat: u32,
    pub latency: LatencySummary,
    /// The SLO group's time to first token and per output token, where its commands streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft: Option<LatencySummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot: Option<LatencySummary>,
    pub slo_group_throughput: f64,
    pub complete: bool,
}

/// One point of the search: a mode at a Pod count.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Point {
    pub mode: String,
    pub pods: u32,
    pub processes: u32,
    /// Latency of the SLO group, merged over its Pods: the repeat with the median p99.
    pub slo_latency: LatencySummary,
    /// Requests per second the SLO group completed (all its Pods), median over repeats.
    pub slo_group_throughput: f64,
    /// Requests per second all groups completed, median over repeats.
    pub total_throughput: f64,
    /// Offered requests per second per Pod of the swept groups (open loop).
    pub rate_per_pod: Option<f64>,
    pub verdict: Verdict,
    /// Each repeat of the point.
    #[serde(default)]
    pub repeats: Vec<RepeatPoint>,
    /// The SLO group's p99 over the repeats (ns).
    #[serde(default)]
    pub p99_across_ns: Option<Spread>,
    /// The p99 bound judged against the SLO (ns): across repeats, or the one repeat's own.
    #[serde(default)]
    pub p99_upper_ns: Option<f64>,
    /// Repeats whose p99 is within the SLO.
    #[serde(default)]
    pub repeats_within: u32,
    /// The streaming SLOs the point was also judged against (TTFT, TPOT), each with its verdict; the point's
    /// verdict is the worst of these and the latency's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streaming: Vec<FigureVerdict>,
    /// The latency's own verdict, where streaming SLOs also judged the point (`verdict` is the worst of all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_verdict: Option<Verdict>,
    pub failures: Vec<String>,
    /// What the GPU telemetry of the point says went wrong around it (clocks, throttling, other processes):
    /// the verdict stands, but it was reached under these conditions.
    #[serde(default)]
    pub conditions: Vec<String>,
}

/// The upper bound of a point's p99 that the SLO is judged against (ns): with several repeats the top of the
/// interval across them, and never below the worst repeat; with one, its distribution-free 95% bound.
pub fn p99_upper(repeats: &[LatencySummary]) -> Option<f64> {
    match repeats {
        [] => None,
        [one] => one.p99_bounds_ns.map(|[_, high]| high as f64),
        several => {
            let p99s: Vec<f64> = several.iter().map(|l| l.p99_ns as f64).collect();
            let across = Spread::of(&p99s)?.across?;
            Some(across.high.max(p99s.iter().copied().fold(0.0, f64::max)))
        }
    }
}

/// The verdict of a point's repeats against the SLO.
pub fn judge(repeats: &[LatencySummary], slo_ns: u64, complete: bool) -> Verdict {
    if !complete || repeats.is_empty() {
        return Verdict::Failed;
    }
    if repeats.iter().any(|l| l.p99_bounds_ns.is_none()) {
        return Verdict::Invalid;
    }
    match p99_upper(repeats) {
        Some(upper) if upper <= slo_ns as f64 && repeats.iter().all(|l| l.p99_ns <= slo_ns) => Verdict::Meets,
        Some(_) => Verdict::Violates,
        None => Verdict::Invalid,
    }
}

/// The worse of two verdicts: a failure over too few samples over a violation over meeting.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v: Verdict| match v {
        Verdict::Meets => 0,
        Verdict::Violates => 1,
        Verdict::Invalid => 2,
        Verdict::Failed => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// A streaming figure's verdict over the repeats: judged as the latency is; a repeat that did not report it
/// leaves the point unjudgeable (`invalid`).
fn judge_figure(figure: &str, slo_ns: u64, repeats: &[Option<LatencySummary>], complete: bool) -> FigureVerdict {
    let reported: Vec<LatencySummary> = repeats.iter().flatten().copied().collect();
    let p99s: Vec<f64> = reported.iter().map(|l| l.p99_ns as f64).collect();
    let verdict = match reported.len() == repeats.len() {
        true => judge(&reported, slo_ns, complete),
        false if !complete => Verdict::Failed,
        false => Verdict::Invalid,
    };
    FigureVerdict {
        figure: figure.into(),
        slo_ns,
        p99_median_ns: Spread::of(&p99s).map(|s| s.median),
        p99_upper_ns: p99_upper(&reported),
        verdict,
    }
}

/// Requests per second of these workers over their common makespan (on the device clock, or on the hosts' when
/// a foreign command is among them).
fn throughput<'a>(workers: impl Iterator<Item = &'a Worker> + Clone) -> f64 {
    let members: Vec<&Worker> = workers.collect();
    let kernels: usize = members.iter().map(|w| w.records.len()).sum();
    match super::group::span(&members, Clock::common(members.iter().copied())) {
        (first, last) if last > first => kernels as f64 / ((last - first) as f64 / 1e9),
        _ => 0.0,
    }
}

fn median(values: &[f64]) -> f64 {
    Spread::of(values).map_or(0.0, |s| s.median)
}

/// Summarizes one point from its workers' results (every repeat), judged over its repeats.
pub fn point(
    mode: &str,
    pods: u32,
    processes: u32,
    slo_group: &str,
    slo: Slo,
    workers: &[Worker],
    mut failures: Vec<String>,
) -> Point {
    let slo_ns = slo.p99_ns;
    // Pods that landed on different GPUs did not share one: the point says nothing about sharing.
    let gpus: std::collections::BTreeSet<&str> = workers.iter().map(|w| w.gpu.uuid.as_str()).collect();
    if gpus.len() > 1 {
        failures.push(format!(
            "the workers ran on {} GPUs ({}), so they did not share one: give the Pods one GPU (e.g. one DRA claim shared by all)",
            gpus.len(),
            gpus.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let mut by_repeat: std::collections::BTreeMap<u32, Vec<&Worker>> = Default::default();
    for w in workers {
        by_repeat.entry(w.config.repeat).or_default().push(w);
    }
    let mut totals = Vec::new();
    let repeats: Vec<RepeatPoint> = by_repeat
        .iter()
        .map(|(&repeat, members)| {
            let in_slo_group = || members.iter().copied().filter(|w| w.group.as_deref() == Some(slo_group));
            let merged = histogram::merged(in_slo_group().map(|w| &w.histogram));
            totals.push(throughput(members.iter().copied()));
            let slo_members: Vec<&Worker> = in_slo_group().collect();
            let streamed = |figure: fn(&crate::load::Streaming) -> Option<&histogram::Recorded>| {
                super::group::streamed(&slo_members, figure)
            };
            RepeatPoint {
                repeat,
                latency: LatencySummary::of(&merged),
                ttft: streamed(|s| Some(&s.ttft)),
                tpot: streamed(|s| s.tpot.as_ref()),
                slo_group_throughput: throughput(in_slo_group()),
                complete: members.len() as u32 == processes && members.iter().all(|w| w.status.complete),
            }
        })
        .collect();
    let complete = failures.is_empty() && !repeats.is_empty() && repeats.iter().all(|r| r.complete);
    let latencies: Vec<LatencySummary> = repeats.iter().map(|r| r.latency).collect();
    let p99s: Vec<f64> = latencies.iter().map(|l| l.p99_ns as f64).collect();
    let p99_across_ns = Spread::of(&p99s);
    // The repeat whose p99 is the median's (the lower middle for an even count).
    let mut order: Vec<usize> = (0..latencies.len()).collect();
    order.sort_by(|&a, &b| p99s[a].total_cmp(&p99s[b]));
    let middle = order.get(order.len().saturating_sub(1) / 2).map(|&i| latencies[i]).unwrap_or_default();
    type Of = fn(&RepeatPoint) -> Option<LatencySummary>;
    let figures: [(&str, Option<u64>, Of); 2] =
        [("ttft", slo.ttft_p99_ns, |r| r.ttft), ("tpot", slo.tpot_p99_ns, |r| r.tpot)];
    let streaming: Vec<FigureVerdict> = figures
        .iter()
        .filter_map(|(name, slo_ns, of)| {
            Some(judge_figure(name, (*slo_ns)?, &repeats.iter().map(of).collect::<Vec<_>>(), complete))
        })
        .collect();
    let latency_verdict = judge(&latencies, slo_ns, complete);
    let verdict = streaming.iter().fold(latency_verdict, |v, f| worse(v, f.verdict));
    Point {
        mode: mode.to_string(),
        pods,
        processes,
        slo_latency: middle,
        slo_group_throughput: median(&repeats.iter().map(|r| r.slo_group_throughput).collect::<Vec<_>>()),
        total_throughput: median(&totals),
        rate_per_pod: None,
        verdict,
        latency_verdict: (!streaming.is_empty()).then_some(latency_verdict),
        streaming,
        p99_upper_ns: p99_upper(&latencies),
        repeats_within: latencies.iter().filter(|l| l.samples > 0 && l.p99_ns <= slo_ns).count() as u32,
        p99_across_ns,
        repeats,
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
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
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
pub(crate) mod tests {
    use super::*;

    /// A repeat's latency with `samples` samples, p99 `p99_ms` and its distribution-free bound (+-5%) where the
    /// samples allow one.
    fn summary(samples: u64, p99_ms: f64) -> LatencySummary {
        let p99_ns = (p99_ms * 1e6) as u64;
        let bounds = (samples >= 368).then(|| [p99_ns * 95 / 100, p99_ns * 105 / 100]);
        LatencySummary { samples, p99_ns, p99_bounds_ns: bounds, ..Default::default() }
    }

    fn slo_of(p99_ns: u64) -> Slo {
        Slo { p99_ns, ..Slo::default() }
    }

    pub(crate) fn at(mode: &str, pods: u32, verdict: Verdict) -> Point {
        Point {
            mode: mode.into(),
            pods,
            processes: pods,
            slo_latency: summary(5000, 1.0),
            slo_group_throughput: 0.0,
            total_throughput: 0.0,
            rate_per_pod: None,
            verdict,
            repeats: vec![],
            p99_across_ns: None,
            p99_upper_ns: None,
            repeats_within: 0,
            streaming: vec![],
            latency_verdict: None,
            failures: vec![],
            conditions: vec![],
        }
    }

    #[test]
    fn one_repeat_meets_the_slo_only_when_its_p99_bound_does() {
        let slo = 2_000_000;
        assert_eq!(judge(&[summary(5000, 1.5)], slo, true), Verdict::Meets);
        // p99 1.95 ms is within 2 ms, but its upper bound (2.05 ms) is not.
        assert_eq!(judge(&[summary(5000, 1.95)], slo, true), Verdict::Violates);
        assert_eq!(judge(&[summary(5000, 2.5)], slo, true), Verdict::Violates);
        assert_eq!(judge(&[summary(367, 1.0)], slo, true), Verdict::Invalid);
        assert_eq!(judge(&[summary(5000, 1.0)], slo, false), Verdict::Failed);
        assert_eq!(judge(&[], slo, true), Verdict::Failed);
    }

    #[test]
    fn several_repeats_meet_the_slo_only_when_the_bound_across_them_does() {
        let slo = 5_000_000;
        // Steady repeats well inside: meets.
        let steady = [summary(5000, 4.0), summary(5000, 4.1), summary(5000, 3.9)];
        assert_eq!(judge(&steady, slo, true), Verdict::Meets);
        assert!(p99_upper(&steady).unwrap() < 5e6);
        // Every repeat within 5 ms, but so spread that the interval across them reaches past it.
        let noisy = [summary(5000, 2.0), summary(5000, 4.9), summary(5000, 3.0)];
        assert!(noisy.iter().all(|l| l.p99_ns <= slo));
        assert_eq!(judge(&noisy, slo, true), Verdict::Violates);
        // One repeat too thin to bound makes the point invalid.
        assert_eq!(judge(&[summary(5000, 1.0), summary(100, 1.0)], slo, true), Verdict::Invalid);
        // The 200 requests/s case of the issue: 4.31 ms on one GPU, 5.05 ms on another: violates.
        assert_eq!(judge(&[summary(5000, 4.31), summary(5000, 5.05)], slo, true), Verdict::Violates);
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
        faulty.status = crate::result::RunStatus {
            complete: false,
            error: Some("injected GPU fault after 200 kernels: x".into()),
            terminated: None,
        };
        let mut hit = crate::analysis::tests::synthetic("mps", 3, 1, 0, 10, 1000, 0);
        hit.status = crate::result::RunStatus {
            complete: false,
            error: Some("CUDA_ERROR_ILLEGAL_ADDRESS".into()),
            terminated: None,
        };
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
        let p = point("mps", 1, 2, "latency", slo_of(1_000_000), &[w, batch], vec![]);
        assert_eq!(p.slo_latency.samples, 1200);
        assert_eq!(p.verdict, Verdict::Meets);
        assert!((p.slo_group_throughput - 2000.0).abs() < 1.0, "{}", p.slo_group_throughput);
        let failed = point("mps", 1, 3, "latency", slo_of(1_000_000), &[], vec![]);
        assert_eq!(failed.verdict, Verdict::Failed);
    }

    #[test]
    fn pods_on_different_gpus_fail_the_point() {
        let mut a = crate::analysis::tests::synthetic("mps", 2, 0, 0, 1200, 500_000, 0);
        a.group = Some("g".into());
        let mut b = a.clone();
        b.worker = 1;
        b.gpu.uuid = "GPU-other".into();
        let p = point("mps", 2, 2, "g", slo_of(1_000_000), &[a, b], vec![]);
        assert_eq!(p.verdict, Verdict::Failed);
        assert!(p.failures[0].contains("ran on 2 GPUs"), "{:?}", p.failures);
    }

    #[test]
    fn a_streaming_slo_group_is_judged_on_its_ttft_and_tpot_too() {
        use crate::result::histogram::{new_latency_histogram, record, Recorded};
        let mut w = crate::analysis::tests::synthetic("mps", 1, 0, 0, 1200, 500_000, 0);
        w.group = Some("llm".into());
        let (mut ttft, mut tpot) = (new_latency_histogram(), new_latency_histogram());
        for i in 0..1000u64 {
            record(&mut ttft, 40_000_000 + i * 10_000);
            record(&mut tpot, 20_000_000 + i * 1_000);
        }
        w.streaming = Some(crate::load::Streaming { ttft: Recorded::of(&ttft), tpot: Some(Recorded::of(&tpot)) });
        let slo = |ttft_ms: Option<u64>, tpot_ms: Option<u64>| Slo {
            p99_ns: 1_000_000,
            ttft_p99_ns: ttft_ms.map(|m| m * 1_000_000),
            tpot_p99_ns: tpot_ms.map(|m| m * 1_000_000),
        };
        let both = point("mps", 1, 1, "llm", slo(Some(200), Some(50)), std::slice::from_ref(&w), vec![]);
        assert_eq!(both.verdict, Verdict::Meets);
        assert_eq!(
            both.streaming.iter().map(|f| (f.figure.as_str(), f.verdict)).collect::<Vec<_>>(),
            [("ttft", Verdict::Meets), ("tpot", Verdict::Meets)]
        );
        assert!((both.streaming[0].p99_median_ns.unwrap() - 49.9e6).abs() < 0.2e6, "{:?}", both.streaming[0]);
        // The latency meets, TTFT meets, TPOT (p99 ~21 ms) does not meet 10 ms: the point does not.
        let tight = point("mps", 1, 1, "llm", slo(Some(200), Some(10)), std::slice::from_ref(&w), vec![]);
        assert_eq!((tight.streaming[1].verdict, tight.verdict), (Verdict::Violates, Verdict::Violates));
        // A TTFT SLO on a group that reported none cannot be judged.
        w.streaming = None;
        let silent = point("mps", 1, 1, "llm", slo(Some(200), None), std::slice::from_ref(&w), vec![]);
        assert_eq!((silent.streaming[0].p99_median_ns, silent.verdict), (None, Verdict::Invalid));
        assert_eq!(point("mps", 1, 1, "llm", slo(None, None), &[w], vec![]).streaming, vec![]);
    }
}
