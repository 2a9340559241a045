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
    for n in &report.notes {
        out += &format!("note: {n}\n");
    }
    for w in &report.analysis.warnings {
        out += &format!("warning: {w}\n");
    }
    for e in &report.excluded {
        out += &format!("excluded: {}: {}\n", e.source, e.reason);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;
    use crate::load::Loaded;

    #[test]
    fn a_run_spread_over_two_gpus_is_shown_per_gpu_with_a_warning() {
        // 4 workers of each mode, worker i on GPU i mod 2.
        let mut workers = Vec::new();
        for mode in ["timeslice", "mps"] {
            for i in 0..4 {
                let mut w = synthetic(mode, 4, i, 0, 20, 1_000_000, 0);
                w.gpu.uuid = format!("GPU-{}", i % 2);
                workers.push(w);
            }
        }
        let text = render(&super::super::model::build(&Loaded { workers, sources: 8, ..Default::default() }));
        assert_eq!(text.matches("(GPU-0, driver").count() + text.matches("(GPU-1, driver").count(), 2, "{text}");
        assert_eq!(text.lines().filter(|l| l.starts_with("2 of 4")).count(), 4, "{text}");
        assert!(text.contains("4 workers on GPU-0: throughput MPS / time-slicing"), "{text}");
        assert!(text.contains("workers ran on 2 different GPUs (GPU-0, GPU-1)"), "{text}");
        assert!(!text.contains("workers reported"), "a run complete across GPUs is complete: {text}");
    }
}
