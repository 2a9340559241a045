//! The summary table shared by the terminal, Markdown and HTML writers: one row per group, already formatted.
//! Pure.

use super::model::Report;
use crate::analysis::repeats::{Direction, Spread};
use crate::analysis::stats::Estimate;
use crate::analysis::{Comparison, GroupFigures, GroupSummary, RatioFigure};
use crate::units::{format_ns, format_si, three_digits};

/// What one unit of a set of groups' work is: a kernel of sharebench's, a request of a command's, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Kernels,
    Requests,
    Mixed,
}

impl Unit {
    pub fn of(groups: &[&GroupSummary]) -> Unit {
        match groups.iter().filter(|g| g.command.is_some()).count() {
            0 => Unit::Kernels,
            n if n == groups.len() => Unit::Requests,
            _ => Unit::Mixed,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::Kernels => "kernels",
            Unit::Requests => "requests",
            Unit::Mixed => "kernels or requests",
        }
    }

    /// The label of a throughput axis.
    pub fn throughput_axis(self) -> &'static str {
        match self {
            Unit::Kernels => "aggregate throughput (kernels/s)",
            Unit::Requests => "aggregate throughput (requests/s)",
            Unit::Mixed => "aggregate throughput (kernels or requests/s)",
        }
    }
}

/// The summary table's header for `groups`: one row per group, its figures across repeats.
pub fn header(groups: &[&GroupSummary]) -> [&'static str; 14] {
    let unit = Unit::of(groups);
    let (rate, work) = match unit {
        Unit::Kernels => ("kernels/s median [95% CI across repeats]", "FLOP/s or B/s"),
        Unit::Requests => ("requests/s median [95% CI across repeats]", "items/s"),
        Unit::Mixed => ("per s median [95% CI across repeats]", "FLOP/s, B/s or items/s"),
    };
    [
        "workers",
        "mode",
        "repeats",
        "verified",
        unit.name(),
        rate,
        "overlap",
        "p50",
        "p99 [95% CI across repeats]",
        "p99.9",
        "fairness",
        "slowdown",
        work,
        "valid",
    ]
}

/// The per-repeat table's header: each repeat of each group as it measured, with its within-run interval and
/// its p99's distribution-free bounds.
pub fn repeat_header(groups: &[&GroupSummary]) -> [&'static str; 13] {
    let unit = Unit::of(groups);
    let rate = match unit {
        Unit::Kernels => "kernels/s [95% CI within the run]",
        Unit::Requests => "requests/s [95% CI within the run]",
        Unit::Mixed => "per s [95% CI within the run]",
    };
    [
        "workers",
        "mode",
        "repeat",
        "verified",
        unit.name(),
        rate,
        "overlap",
        "p50",
        "p99 [95% bound]",
        "p99.9",
        "fairness",
        "slowdown",
        "valid",
    ]
}

pub fn estimate(e: &Estimate) -> String {
    format!("{} [{}, {}]", three_digits(e.value), three_digits(e.ci_low), three_digits(e.ci_high))
}

/// `1.42 [1.31, 1.53]` (median and interval across repeats), or `1.25` for one repeat; `fmt` formats a value.
pub fn spread(s: &Spread, fmt: impl Fn(f64) -> String) -> String {
    match s.across {
        Some(i) => format!("{} [{}, {}]", fmt(s.median), fmt(i.low), fmt(i.high)),
        None => fmt(s.median),
    }
}

/// `1.42x [1.31, 1.53]`, or `-`.
pub fn ratio(f: Option<&RatioFigure>) -> String {
    match f {
        Some(f) => match f.spread.across {
            Some(i) => {
                format!("{}x [{}, {}]", three_digits(f.spread.median), three_digits(i.low), three_digits(i.high))
            }
            None => format!("{}x", three_digits(f.spread.median)),
        },
        None => "-".into(),
    }
}

/// ` over 5 repeats` / ` in one repeat`.
pub fn over_repeats(n: usize) -> String {
    if n == 1 {
        " in one repeat".into()
    } else {
        format!(" over {n} repeats")
    }
}

fn worker_cell(g: &GroupSummary) -> String {
    // A run spread over GPUs has part of its workers in each GPU's row.
    match (g.workers_reported == g.key.workers, g.alone_beside) {
        (true, _) => g.key.workers.to_string(),
        (false, 0) => format!("{} of {}", g.workers_reported, g.key.workers),
        (false, alone) => format!("{} of {} ({alone} alone)", g.workers_reported, g.key.workers),
    }
}

fn work_rate(g: &GroupSummary) -> String {
    match (g.flop_per_s, g.bytes_per_s, g.items_per_s) {
        (Some(f), _, _) => format!("{}FLOP/s", format_si(f)),
        (_, Some(b), _) => format!("{}B/s", format_si(b)),
        (_, _, Some(i)) => format!("{} items/s", three_digits(i)),
        _ => "-".into(),
    }
}

fn overlap_cell(f: Option<f64>) -> String {
    f.map(|f| format!("{:.1}%", f * 100.0)).unwrap_or_else(|| "n/a".into())
}

fn latency_cell(s: &Option<Spread>, with_interval: bool) -> String {
    match s {
        Some(s) if with_interval => spread(s, format_ns),
        Some(s) => format_ns(s.median),
        None => "-".into(),
    }
}

/// The summary table's row of one group: `f` its figures across repeats, `repeats` its repeats' summaries.
pub fn row(f: &GroupFigures, repeats: &[&GroupSummary]) -> Vec<String> {
    let first = repeats[0];
    let verified: u32 = repeats.iter().map(|g| g.verified_workers).sum();
    let reported: u32 = repeats.iter().map(|g| g.workers_reported).sum();
    let kernels: u64 = repeats.iter().map(|g| g.kernels).sum();
    let median_repeat = repeats.iter().find(|g| g.repeat == f.median_repeat).unwrap_or(&first);
    vec![
        worker_cell(first),
        f.key.mode.clone(),
        f.repeats.len().to_string(),
        format!("{verified}/{reported}"),
        kernels.to_string(),
        spread(&f.throughput, three_digits),
        overlap_cell(f.overlap_fraction.as_ref().map(|o| o.median)),
        latency_cell(&f.p50_ns, false),
        latency_cell(&f.p99_ns, true),
        latency_cell(&f.p999_ns, false) + unbounded_mark(repeats.iter().any(|g| g.latency.p999_bounds_ns.is_none())),
        format!("{:.3}", f.fairness.median),
        f.slowdown_vs_solo.as_ref().map(|s| format!("{:.2}x", s.median)).unwrap_or_else(|| "-".into()),
        work_rate(median_repeat),
        if f.valid() { "yes".into() } else { "INVALID".into() },
    ]
}

/// Marks a p99.9 that rests on too few samples (in a repeat) for a distribution-free bound.
pub const UNBOUNDED: &str = "*";

/// What [`UNBOUNDED`] means, for the writers' footnotes.
pub const UNBOUNDED_NOTE: &str =
    "* p99.9 rests on fewer than 3688 samples in a repeat: it has no distribution-free 95% bound, read it as a rough figure";

fn unbounded_mark(unbounded: bool) -> &'static str {
    if unbounded {
        UNBOUNDED
    } else {
        ""
    }
}

/// The per-repeat table's row of one repeat of one group.
pub fn repeat_row(g: &GroupSummary) -> Vec<String> {
    let p99 = match g.latency.p99_bounds_ns {
        Some([low, high]) => {
            format!("{} [{}, {}]", format_ns(g.latency.p99_ns as f64), format_ns(low as f64), format_ns(high as f64))
        }
        None if g.latency.samples > 0 => {
            format!("{} [no bound: n={}]", format_ns(g.latency.p99_ns as f64), g.latency.samples)
        }
        None => "-".into(),
    };
    vec![
        worker_cell(g),
        g.key.mode.clone(),
        (g.repeat + 1).to_string(),
        format!("{}/{}", g.verified_workers, g.workers_reported),
        g.kernels.to_string(),
        estimate(&g.kernels_per_s),
        overlap_cell(g.overlap_fraction),
        format_ns(g.latency.p50_ns as f64),
        p99,
        format_ns(g.latency.p999_ns as f64) + unbounded_mark(g.latency.p999_bounds_ns.is_none()),
        format!("{:.3}", g.fairness_jain),
        g.mean_slowdown().map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into()),
        if g.invalid.is_empty() { "yes".into() } else { format!("INVALID: {}", g.invalid.join("; ")) },
    ]
}

/// Whether a run of the report spans several GPUs (then its blocks and comparisons name their GPU; runs on one
/// GPU each are told apart by their run ids, and their headers name the GPU).
pub fn several_gpus(report: &Report) -> bool {
    let c = &report.analysis.comparisons;
    c.iter().any(|x| c.iter().any(|y| y.run_id == x.run_id && y.gpu_uuid != x.gpu_uuid))
}

/// A ratio with what its repeats say: `1.42x [1.31, 1.53] over 5 repeats (each > 1)`.
fn ratio_with_repeats(f: Option<&RatioFigure>) -> String {
    let Some(r) = f else { return "-".into() };
    let n = r.spread.repeats();
    let agreement = match r.spread.direction(1.0) {
        Direction::Above => " (each > 1)".to_string(),
        Direction::Below => " (each < 1)".to_string(),
        Direction::NoConsistentDifference => {
            format!(" (no consistent difference: {}-{}x)", three_digits(r.spread.min), three_digits(r.spread.max))
        }
        Direction::OneRepeat => match r.within_run.first() {
            Some(w) => format!(" (within-run [{}, {}] only)", three_digits(w.ci_low), three_digits(w.ci_high)),
            None => String::new(),
        },
    };
    format!("{}{}{agreement}", ratio(f), over_repeats(n))
}

/// One comparison: `4 workers: throughput MPS / time-slicing 1.9x [1.8, 2.0] over 5 repeats (each > 1); ...`.
pub fn comparison_line(c: &Comparison, several_gpus: bool) -> String {
    let (head, parts) = comparison_parts(c, several_gpus);
    format!("{head}: {}", parts.join("; "))
}

/// A comparison as its heading (`4 workers`, `1 worker on GPU-...`) and one entry per ratio, for a line each.
pub fn comparison_parts(c: &Comparison, several_gpus: bool) -> (String, Vec<String>) {
    let on_gpu = if several_gpus { format!(" on {}", c.gpu_uuid) } else { String::new() };
    let mut parts =
        vec![format!("throughput MPS / time-slicing {}", ratio_with_repeats(c.mps_over_timeslice.as_ref()))];
    if c.mps_over_streams.is_some() {
        parts.push(format!("MPS / streams ceiling {}", ratio_with_repeats(c.mps_over_streams.as_ref())));
    }
    if c.timeslice_over_streams.is_some() {
        parts.push(format!("time-slicing / streams {}", ratio_with_repeats(c.timeslice_over_streams.as_ref())));
    }
    if c.p99_mps_over_timeslice.is_some() {
        parts.push(format!("p99 MPS / time-slicing {}", ratio_with_repeats(c.p99_mps_over_timeslice.as_ref())));
    }
    let noun = if c.workers == 1 { "worker" } else { "workers" };
    (format!("{} {noun}{on_gpu}", c.workers), parts)
}

/// Aligns rows under a header with two spaces between columns.
pub fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}
