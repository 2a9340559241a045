//! The summary table shared by the terminal, Markdown and HTML writers: one row per group, already formatted.
//! Pure.

use super::model::Report;
use crate::analysis::stats::Estimate;
use crate::units::{format_ns, format_si, three_digits};

/// What one unit of a set of groups' work is: a kernel of sharebench's, a request of a command's, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Kernels,
    Requests,
    Mixed,
}

impl Unit {
    pub fn of(groups: &[&crate::analysis::GroupSummary]) -> Unit {
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

/// The summary table's header for `groups`.
pub fn header(groups: &[&crate::analysis::GroupSummary]) -> [&'static str; 12] {
    let unit = Unit::of(groups);
    let (rate, work) = match unit {
        Unit::Kernels => ("kernels/s [95% CI]", "FLOP/s or B/s"),
        Unit::Requests => ("requests/s [95% CI]", "items/s"),
        Unit::Mixed => ("per s [95% CI]", "FLOP/s, B/s or items/s"),
    };
    ["workers", "mode", "verified", unit.name(), rate, "overlap", "p50", "p99", "p99.9", "fairness", "slowdown", work]
}

/// Mean over workers of their slowdown against the solo run, when there is one.
pub fn mean_slowdown(g: &crate::analysis::GroupSummary) -> Option<f64> {
    let values: Vec<f64> = g.per_worker.iter().filter_map(|w| w.slowdown_vs_solo).filter(|v| v.is_finite()).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

pub fn estimate(e: &Estimate) -> String {
    format!("{} [{}, {}]", three_digits(e.value), three_digits(e.ci_low), three_digits(e.ci_high))
}

pub fn ratio(e: &Option<Estimate>) -> String {
    match e {
        Some(e) => format!("{}x [{}, {}]", three_digits(e.value), three_digits(e.ci_low), three_digits(e.ci_high)),
        None => "-".into(),
    }
}

/// The summary table's row of one group.
pub fn row(g: &crate::analysis::GroupSummary) -> Vec<String> {
    let rate = match (g.flop_per_s, g.bytes_per_s, g.items_per_s) {
        (Some(f), _, _) => format!("{}FLOP/s", format_si(f)),
        (_, Some(b), _) => format!("{}B/s", format_si(b)),
        (_, _, Some(i)) => format!("{} items/s", three_digits(i)),
        _ => "-".into(),
    };
    // A run spread over GPUs has part of its workers in each GPU's row.
    let workers = match g.workers_reported == g.key.workers {
        true => g.key.workers.to_string(),
        false => format!("{} of {}", g.workers_reported, g.key.workers),
    };
    vec![
        workers,
        g.key.mode.clone(),
        format!("{}/{}", g.verified_workers, g.workers_reported),
        g.kernels.to_string(),
        estimate(&g.kernels_per_s),
        g.overlap_fraction.map(|f| format!("{:.1}%", f * 100.0)).unwrap_or_else(|| "n/a".into()),
        format_ns(g.latency.p50_ns as f64),
        format_ns(g.latency.p99_ns as f64),
        format_ns(g.latency.p999_ns as f64),
        format!("{:.3}", g.fairness_jain),
        mean_slowdown(g).map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into()),
        rate,
    ]
}

/// Whether the report's comparisons span more than one GPU (then each line names its GPU).
pub fn several_gpus(report: &Report) -> bool {
    let c = &report.analysis.comparisons;
    c.iter().any(|x| x.gpu_uuid != c[0].gpu_uuid)
}

/// One comparison: `4 workers: throughput MPS / time-slicing 1.9x [1.8, 2.0] (...); MPS / streams ...`.
pub fn comparison_line(c: &crate::analysis::Comparison, several_gpus: bool) -> String {
    let on_gpu = if several_gpus { format!(" on {}", c.gpu_uuid) } else { String::new() };
    let verdict = match &c.mps_over_timeslice {
        Some(e) if e.excludes(1.0) => " (a real difference: the interval excludes 1)",
        Some(_) => " (within noise: the interval includes 1)",
        None => "",
    };
    let p99 =
        c.p99_mps_over_timeslice.map(|r| format!("; p99 MPS / time-slicing {}x", three_digits(r))).unwrap_or_default();
    format!(
        "{} workers{on_gpu}: throughput MPS / time-slicing {}{verdict}; MPS / streams ceiling {}; time-slicing / streams {}{p99}",
        c.workers,
        ratio(&c.mps_over_timeslice),
        ratio(&c.mps_over_streams),
        ratio(&c.timeslice_over_streams)
    )
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
