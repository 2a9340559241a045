//! The terminal summary: which GPU and workload, the table, the comparisons, the warnings. Pure (returns text).

use super::model::{describe_shape, Report};
use super::table;

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let mut last_context = String::new();
    let rows = table::rows(report);
    let mut block: Vec<Vec<String>> = Vec::new();
    let flush = |out: &mut String, block: &mut Vec<Vec<String>>| {
        if !block.is_empty() {
            *out += &table::aligned(&table::HEADER, block);
            block.clear();
        }
    };
    for (g, row) in report.analysis.groups.iter().zip(rows) {
        let context = format!(
            "run {} on {} ({}, driver {}): {}",
            g.key.run_id,
            g.gpu_name,
            g.key.gpu_uuid,
            g.driver_version.as_deref().unwrap_or("?"),
            describe_shape(&g.shape)
        );
        if context != last_context {
            flush(&mut out, &mut block);
            out += &format!("\n{context}\n");
            last_context = context;
        }
        block.push(row.to_vec());
    }
    flush(&mut out, &mut block);
    for g in &report.analysis.groups {
        for w in g.per_worker.iter().filter(|w| !w.complete) {
            out += &format!(
                "failed: run {}, mode {} x{}, worker {} ({}): {}\n",
                g.key.run_id,
                g.key.mode,
                g.key.workers,
                w.worker,
                w.host,
                w.error.as_deref().unwrap_or("incomplete")
            );
        }
    }
    let comparisons = table::comparison_lines(report);
    if !comparisons.is_empty() {
        out += "\ncomparisons (95% bootstrap intervals):\n";
        for c in comparisons {
            out += &format!("  {c}\n");
        }
    }
    for w in &report.analysis.warnings {
        out += &format!("warning: {w}\n");
    }
    for e in &report.excluded {
        out += &format!("excluded: {}: {}\n", e.source, e.reason);
    }
    out
}
