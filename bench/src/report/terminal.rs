//! The terminal summary, in the order of the reports: the answer first (one line per run and worker count), then
//! per run its context line, table, failed workers, comparisons and warnings grouped by kind (severe ones first,
//! one line per kind); loading notes and exclusions last. Pure (returns text).

use super::model::Report;
use super::sections::sections;
use super::table;

/// Past this many runs the answer is left to each run's block.
const ANSWER_RUNS: usize = 6;

pub fn render(report: &Report) -> String {
    let runs = sections(report);
    let several_gpus = table::several_gpus(report);
    let mut out = String::new();
    if runs.len() <= ANSWER_RUNS {
        out += "\nthe answer:\n";
        for s in &runs {
            for line in &s.headline {
                out += &format!("  {}: {line}\n", s.title(several_gpus));
            }
        }
    }
    for s in &runs {
        out += &format!("\nrun {} on {} ({}, driver {}): {}\n", s.run_id, s.gpu_name, s.gpu_uuid, s.driver, s.workload);
        let rows = s.rows();
        out += &table::aligned(&table::header(&s.groups), &rows);
        if rows.iter().any(|r| r[9].ends_with(table::UNBOUNDED)) {
            out += &format!("{}\n", table::UNBOUNDED_NOTE);
        }
        for g in &s.groups {
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
        if !s.comparisons.is_empty() {
            out += "comparisons (median over repeats, 95% interval across repeats):\n";
            for c in &s.comparisons {
                out += &format!("  {}\n", table::comparison_line(c, several_gpus));
            }
        }
        for w in &s.warnings {
            let tag = if w.kind.severe() { "warning" } else { "advisory" };
            out += &format!("{tag}: {}\n", w.line());
        }
    }
    for n in &report.notes {
        out += &format!("note: {n}\n");
    }
    for e in &report.excluded {
        out += &format!("excluded: {}: {}\n", e.source, e.reason);
    }
    // Run ids, host names and messages come from the results: shown, never obeyed.
    crate::units::printable(&out)
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
        assert!(text.contains("warning: workers on several GPUs"), "{text}");
        assert_eq!(text.matches("mps x4 on 2 GPUs").count(), 2, "once per GPU's block: {text}");
        assert!(!text.contains("workers reported"), "a run complete across GPUs is complete: {text}");
    }
}
