//! The observer effect (pure): a tenant's figures under sharebench (a supervising worker per Pod, its barrier,
//! its telemetry) set against the same tenant alone (`compare --observer-effect`), repeat by repeat, so the ratio
//! carries its own interval across repeats. The target is a cost within [`TOLERANCE`] in requests/s and p99.
//!
//! Two designs: `shared-window` (half the Pods of one window supervised, half alone: each repeat compares the
//! halves within one window, so what moves a whole window cancels) and `paired` (every phase twice, all
//! supervised then all alone: the window-to-window spread enters the ratio). A row says which it is.

use super::repeats::Spread;
use super::{Analysis, GroupSummary};
use crate::load::Worker;
use serde::Serialize;

/// What sharebench may cost a tenant: 3% of its requests/s and of its p99.
pub const TOLERANCE: f64 = 0.03;

/// One mode at one Pod count: supervised against alone.
#[derive(Debug, Clone, Serialize)]
pub struct ObserverRow {
    pub mode: String,
    /// Pods on the GPU in each window.
    pub workers: u32,
    /// `shared-window` or `paired` (see the module's comment).
    pub design: &'static str,
    /// Pods on each side in a window: supervised and alone.
    pub pods_supervised: u32,
    pub pods_alone: u32,
    /// Repeats with both a supervised and an alone measurement.
    pub repeats: Vec<u32>,
    pub supervised_per_s: Spread,
    pub alone_per_s: Spread,
    /// Supervised over alone per Pod, repeat by repeat (1: no cost; below 1: fewer requests under sharebench).
    pub throughput_ratio: Spread,
    pub supervised_p99_ns: Option<Spread>,
    pub alone_p99_ns: Option<Spread>,
    /// p99 supervised over alone (above 1: slower under sharebench).
    pub p99_ratio: Option<Spread>,
    /// CPUs each supervising worker used on average over its window.
    pub worker_cpus: Option<f64>,
    /// The node's busy and stolen (hypervisor) shares of CPU time over the supervised windows, on average.
    pub node_busy_share: Option<f64>,
    pub node_steal_share: Option<f64>,
    /// Whether both medians are within [`TOLERANCE`].
    pub within_tolerance: bool,
    /// Whether both 95% intervals across repeats lie within [`TOLERANCE`] too: the cost is shown to be that
    /// small, not only estimated so.
    pub resolved: bool,
}

/// Pairs every supervised group with the alone group of the same mode, Pod count and repeat.
pub fn compare(supervised: &Analysis, alone: &Analysis, supervised_workers: &[Worker]) -> Vec<ObserverRow> {
    let mut keys: Vec<(String, u32)> = supervised.groups.iter().map(|g| (g.key.mode.clone(), g.key.workers)).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter().filter_map(|(mode, workers)| row(&mode, workers, supervised, alone, supervised_workers)).collect()
}

fn row<'a>(
    mode: &str,
    workers: u32,
    supervised: &'a Analysis,
    alone: &'a Analysis,
    ws: &[Worker],
) -> Option<ObserverRow> {
    let of = |a: &'a Analysis| -> Vec<&'a GroupSummary> {
        a.groups.iter().filter(|g| g.key.mode == mode && g.key.workers == workers).collect()
    };
    let (sup, alo) = (of(supervised), of(alone));
    let pairs: Vec<(&GroupSummary, &GroupSummary)> =
        sup.iter().filter_map(|s| alo.iter().find(|a| a.repeat == s.repeat).map(|a| (*s, *a))).collect();
    if pairs.is_empty() {
        return None;
    }
    let spread = |f: &dyn Fn(&GroupSummary, &GroupSummary) -> Option<f64>| {
        Spread::of(&pairs.iter().filter_map(|(s, a)| f(s, a)).collect::<Vec<_>>())
    };
    let p99 = |g: &GroupSummary| (g.latency.samples > 0).then_some(g.latency.p99_ns as f64);
    // Per Pod: a shared window of an odd Pod count has one more Pod on one side.
    let per_pod = |g: &GroupSummary| g.kernels_per_s.value / g.workers_reported.max(1) as f64;
    let throughput_ratio = spread(&|s, a| Some(per_pod(s) / per_pod(a)))?;
    let p99_ratio = spread(&|s, a| Some(p99(s)? / p99(a)?));
    let conditions: Vec<&crate::result::host::HostConditions> = ws
        .iter()
        .filter(|w| w.mode == mode && w.config.workers == workers)
        .filter_map(|w| w.host_conditions.as_ref())
        .collect();
    let mean = |f: &dyn Fn(&crate::result::host::HostConditions) -> Option<f64>| {
        let v: Vec<f64> = conditions.iter().filter_map(|c| f(c)).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let shared = pairs.iter().any(|(s, _)| s.alone_beside > 0);
    let (within_tolerance, resolved) = judge(&throughput_ratio, p99_ratio.as_ref());
    Some(ObserverRow {
        mode: mode.into(),
        workers,
        design: if shared { "shared-window" } else { "paired" },
        pods_supervised: pairs.iter().map(|(s, _)| s.workers_reported).max().unwrap_or(0),
        pods_alone: pairs.iter().map(|(_, a)| a.workers_reported).max().unwrap_or(0),
        repeats: pairs.iter().map(|(s, _)| s.repeat).collect(),
        supervised_per_s: spread(&|s, _| Some(s.kernels_per_s.value))?,
        alone_per_s: spread(&|_, a| Some(a.kernels_per_s.value))?,
        within_tolerance,
        resolved,
        throughput_ratio,
        supervised_p99_ns: spread(&|s, _| p99(s)),
        alone_p99_ns: spread(&|_, a| p99(a)),
        p99_ratio,
        worker_cpus: mean(&|c| c.worker_cpus()),
        node_busy_share: mean(&|c| c.node_busy_share),
        node_steal_share: mean(&|c| c.node_steal_share),
    })
}

/// Whether both ratios' medians are within [`TOLERANCE`] of 1, and whether their intervals across repeats are
/// too (a single repeat has no interval: never resolved).
pub fn judge(throughput: &Spread, p99: Option<&Spread>) -> (bool, bool) {
    let within = |r: &Spread| (r.median - 1.0).abs() <= TOLERANCE;
    let inside = |r: &Spread| r.across.is_some_and(|i| 1.0 - TOLERANCE <= i.low && i.high <= 1.0 + TOLERANCE);
    (within(throughput) && p99.is_none_or(within), inside(throughput) && p99.is_none_or(inside))
}

/// The rows as a Markdown section: a table and a sentence per row.
pub fn render_markdown(rows: &[ObserverRow]) -> String {
    let ratio = |s: &Spread| match s.across {
        Some(i) => format!("{:.3} [{:.3}, {:.3}]", s.median, i.low, i.high),
        None => format!("{:.3}", s.median),
    };
    let ms = |s: &Option<Spread>| s.as_ref().map(|s| format!("{:.2}", s.median / 1e6)).unwrap_or_else(|| "n/a".into());
    let mut out = String::from(
        "# Observer effect: the tenant under sharebench against alone\n\n\
         Supervised: a Pod's command with a sharebench worker beside it (as `compare` and a Job run them). Alone: \
         the same command started by `compare` itself, its protocol lines to a file read afterwards, no \
         telemetry. `shared-window`: in each repeat half the Pods of one window ran supervised and half alone \
         (alternate indices, swapped every repeat), so the GPU, the daemon and the node were the same for both \
         halves; what the workers' own CPU use costs every tenant alike is in the worker CPU column. `paired`: \
         each repeat ran all Pods supervised, then all alone, in two windows. Ratios are supervised over alone, \
         repeat by repeat: req/s of all a side's Pods, its ratio per Pod; p99 over all a side's requests; median \
         [95% interval across repeats].\n\n\
         | mode | Pods | design | Pods supervised / alone | repeats | req/s supervised | req/s alone | ratio | p99 ms supervised | p99 ms alone | p99 ratio | worker CPU | node busy / steal | verdict |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let percent = TOLERANCE * 100.0;
        let verdict = match (r.within_tolerance, r.resolved) {
            (true, true) => format!("within {percent:.0}%"),
            (true, false) => format!("median within {percent:.0}%, interval wider: more repeats to resolve"),
            (false, _) => format!("OUTSIDE {percent:.0}%"),
        };
        out += &format!(
            "| {} | {} | {} | {} / {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {verdict} |\n",
            r.mode,
            r.workers,
            r.design,
            r.pods_supervised,
            r.pods_alone,
            r.repeats.len(),
            r.supervised_per_s.median,
            r.alone_per_s.median,
            ratio(&r.throughput_ratio),
            ms(&r.supervised_p99_ns),
            ms(&r.alone_p99_ns),
            r.p99_ratio.as_ref().map(ratio).unwrap_or_else(|| "n/a".into()),
            r.worker_cpus.map(|c| format!("{c:.3}")).unwrap_or_else(|| "n/a".into()),
            match (r.node_busy_share, r.node_steal_share) {
                (Some(b), Some(s)) => format!("{:.0}% / {:.1}%", b * 100.0, s * 100.0),
                _ => "n/a".into(),
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::tests::worker_at;

    fn analysis_of(run: &str, mode: &str, repeats: u32) -> (Analysis, Vec<Worker>) {
        let mut ws = Vec::new();
        for repeat in 0..repeats {
            for i in 0..2 {
                let mut w = worker_at(run, mode, 2, i, 10 + repeat as u64 * 20);
                w.config.repeat = repeat;
                ws.push(w);
            }
        }
        (super::super::analyze(&ws), ws)
    }

    #[test]
    fn supervised_and_alone_are_paired_by_mode_pods_and_repeat() {
        let (sup, ws) = analysis_of("run", "mps", 3);
        let (alone, _) = analysis_of("run-alone", "mps", 3);
        let rows = compare(&sup, &alone, &ws);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.mode.as_str(), r.workers, r.repeats.len()), ("mps", 2, 3));
        assert!((r.throughput_ratio.median - 1.0).abs() < 1e-9, "{:?}", r.throughput_ratio);
        assert!(r.within_tolerance);
        let text = render_markdown(&rows);
        assert!(text.contains("| mps | 2 | paired | 2 / 2 | 3 |") && text.contains("within 3%"), "{text}");
        assert_eq!((r.design, r.pods_supervised, r.pods_alone), ("paired", 2, 2));
        // No alone measurement of a configuration: no row for it.
        let (ts, ts_workers) = analysis_of("run", "timeslice", 1);
        assert!(compare(&ts, &alone, &ts_workers).is_empty());
    }

    #[test]
    fn a_cost_is_within_tolerance_only_when_its_interval_is_and_estimated_so_when_only_its_median_is() {
        let spread = |v: &[f64]| Spread::of(v).unwrap();
        let tight = spread(&[0.99, 1.0, 1.01, 0.995, 1.005, 1.0]);
        let wide = spread(&[0.85, 1.0, 1.02, 0.99, 1.05, 0.93, 1.0]);
        let costly = spread(&[0.9, 0.92, 0.91, 0.93]);
        assert_eq!(judge(&tight, Some(&tight)), (true, true));
        assert_eq!(judge(&tight, Some(&wide)), (true, false), "the p99's interval too");
        assert_eq!(judge(&wide, None), (true, false));
        assert_eq!(judge(&costly, Some(&tight)), (false, false));
        assert_eq!(judge(&spread(&[1.0]), None), (true, false), "one repeat has no interval");
    }

    #[test]
    fn a_shared_window_sets_the_halves_of_one_window_side_by_side_per_pod() {
        // 3 Pods a window: in repeat 0 Pods 0 and 2 supervised, Pod 1 alone; in repeat 1 Pod 1 supervised.
        let (mut sup, mut alone) = (Vec::new(), Vec::new());
        for repeat in 0..2u32 {
            for i in 0..3u32 {
                let mut w = worker_at(if (i + repeat) % 2 == 0 { "run" } else { "run-alone" }, "mps", 3, i, 10);
                w.config.repeat = repeat;
                let supervised = (i + repeat) % 2 == 0;
                w.config.alone_indices = (0..3).filter(|j| (j + repeat) % 2 == 1).collect();
                if supervised {
                    sup.push(w);
                } else {
                    alone.push(w);
                }
            }
        }
        let rows = compare(&super::super::analyze(&sup), &super::super::analyze(&alone), &sup);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.design, r.workers, r.repeats.len()), ("shared-window", 3, 2));
        assert_eq!((r.pods_supervised, r.pods_alone), (2, 2), "the larger side of each window");
        // Every worker did the same: per Pod, no cost, though one side had twice the Pods in each window.
        assert!((r.throughput_ratio.median - 1.0).abs() < 1e-9, "{:?}", r.throughput_ratio);
        let text = render_markdown(&rows);
        assert!(text.contains("| mps | 3 | shared-window | 2 / 2 | 2 |"), "{text}");
        for side in [&sup, &alone] {
            let a = super::super::analyze(side);
            assert!(a.groups.iter().all(|g| g.complete), "each side holds every Pod it should");
            assert!(!a.warnings.iter().any(|w| w.kind == super::super::WarningKind::Incomplete), "{:?}", a.warnings);
        }
        let mut short = sup.clone();
        short.remove(0);
        let a = super::super::analyze(&short);
        assert!(a.groups.iter().any(|g| !g.complete), "a missing supervised Pod is still missed");
        let cells: Vec<String> =
            super::super::analyze(&sup).groups.iter().map(|g| crate::report::table::repeat_row(g)[0].clone()).collect();
        assert_eq!(cells, ["2 of 3 (1 alone)", "1 of 3 (2 alone)"]);
    }
}
