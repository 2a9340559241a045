//! `report.md`: GitHub-readable, with the summary table, comparisons, warnings, and the charts linked. Pure.

use super::model::{describe_shape, Report};
use super::table;

pub fn render(report: &Report, charts: &[(String, String, String)]) -> String {
    let mut out = String::from("# sharebench report\n\n");
    if let Some(g) = report.analysis.groups.first() {
        out += &format!(
            "GPU **{}** (`{}`), driver {}; workload `{}`. {} workers' results from {} sources.\n\n",
            g.gpu_name,
            g.key.gpu_uuid,
            g.driver_version.as_deref().unwrap_or("?"),
            describe_shape(&g.shape),
            report.workers,
            report.sources
        );
    }
    out += &format!("| {} |\n|{}\n", table::HEADER.join(" | "), "---|".repeat(table::HEADER.len()));
    for (g, row) in report.analysis.groups.iter().zip(table::rows(report)) {
        let _ = g;
        out += &format!("| {} |\n", row.join(" | "));
    }
    out += "\n`verified`: workers whose sharing mode was checked (MPS membership found, or proven absent). Intervals are 95% bootstrap intervals over time windows. `overlap`: share of busy time during which kernels of two or more workers ran (device `%globaltimer` stamps).\n";
    out += "\n## Concurrency\n\nShare of each group's busy time during which exactly k workers had a kernel running on the GPU (device timestamps):\n\n| run | mode | workers | k = 1 | k = 2 | k = 3 | k >= 4 |\n|---|---|---|---|---|---|---|\n";
    for g in &report.analysis.groups {
        let share = |k: usize| g.time_at_concurrency_ns.get(k).copied().unwrap_or(0) as f64 / g.busy_ns.max(1) as f64;
        let rest: f64 = (4..g.time_at_concurrency_ns.len()).map(share).sum::<f64>() + 0.0;
        out += &format!(
            "| {} | {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1}% |\n",
            g.key.run_id,
            g.key.mode,
            g.key.workers,
            share(1) * 100.0,
            share(2) * 100.0,
            share(3) * 100.0,
            rest * 100.0
        );
    }
    let comparisons = table::comparison_lines(report);
    if !comparisons.is_empty() {
        out += "\n## Comparisons\n\n";
        for c in comparisons {
            out += &format!("- {c}\n");
        }
    }
    if !report.analysis.warnings.is_empty() || !report.excluded.is_empty() {
        out += "\n## Warnings\n\n";
        for w in &report.analysis.warnings {
            out += &format!("- {w}\n");
        }
        for e in &report.excluded {
            out += &format!("- excluded `{}`: {}\n", e.source, e.reason);
        }
    }
    if !report.notes.is_empty() {
        out += "\n## Notes\n\n";
        for n in &report.notes {
            out += &format!("- {n}\n");
        }
    }
    out += "\n## Per worker\n\n| run | mode | workers | worker | host | verdict | kernels | kernels/s | p50 | p99 | mean SMs | slowdown vs solo |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for g in &report.analysis.groups {
        for w in &g.per_worker {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {:.1} | {} |\n",
                g.key.run_id,
                g.key.mode,
                g.key.workers,
                w.worker,
                w.host,
                w.verdict.label(),
                w.kernels,
                w.kernels_per_s,
                crate::units::format_ns(w.latency.p50_ns as f64),
                crate::units::format_ns(w.latency.p99_ns as f64),
                w.mean_sm_count,
                w.slowdown_vs_solo.map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into())
            );
        }
    }
    if !charts.is_empty() {
        out += "\n## Charts\n\n";
        // SVG: sharp at any size, a third of the PNG's bytes, and rendered by GitHub; the PNG sits beside it.
        for (title, svg, _png) in charts {
            out += &format!("### {title}\n\n![{title}]({svg})\n\n");
        }
    }
    out
}
