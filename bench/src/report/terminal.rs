//! The terminal summary, in the order of the reports: the answer first (each plan's capacity answer, then one line
//! per other run and worker count), then per run its context line, table, failed workers, comparisons and warnings
//! grouped by kind (severe ones first), a plan's point runs under its heading; loading notes and exclusions last.
//! Pure (returns text).

use super::model::Report;
use super::sections::{by_study, sections, RunSection, LINE_WIDTH};
use super::table;

pub fn render(report: &Report) -> String {
    let runs = sections(report);
    let blocks = by_study(&report.studies, &runs);
    let several_gpus = table::several_gpus(report);
    let mut out = String::from("\nthe answer:\n");
    for block in &blocks {
        match block.study {
            Some(study) => {
                out += &format!("  {} ({}):\n", study.title, study.dir);
                for line in &study.answer {
                    out += &format!("    {line}\n");
                }
                out += &format!("    ({} runs of its points below)\n", block.runs.len());
            }
            None => {
                for s in &block.runs {
                    for line in &s.headline {
                        out += &wrap(&format!("  {}: {line}", s.title(several_gpus)), "      ");
                    }
                }
            }
        }
    }
    for block in &blocks {
        if let Some(study) = block.study {
            out += &format!("\n=== {} ({}): its points ===\n", study.title, study.dir);
        }
        for s in &block.runs {
            out += &run_block(s, several_gpus);
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

/// `text` as lines of at most [`LINE_WIDTH`] characters, broken after `; ` (the answer's clauses), the lines
/// after the first indented by `indent`; a clause longer than a line stays whole.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for (i, clause) in text.split("; ").enumerate() {
        let piece = if i == 0 { clause.to_string() } else { format!("; {clause}") };
        if !line.is_empty() && line.chars().count() + piece.chars().count() > LINE_WIDTH {
            out += &format!("{};\n", line.trim_end());
            line = format!("{indent}{}", piece.trim_start_matches("; "));
        } else {
            line += &piece;
        }
    }
    out + &line + "\n"
}

/// One run's block: its context line, table, failed workers, comparisons and grouped warnings.
fn run_block(s: &RunSection, several_gpus: bool) -> String {
    let mut out = String::new();
    {
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
                let (head, parts) = table::comparison_parts(c, several_gpus);
                out += &format!("  {head}:\n");
                let last = parts.len().saturating_sub(1);
                for (i, part) in parts.iter().enumerate() {
                    out += &format!("    {part}{}\n", if i < last { ";" } else { "" });
                }
            }
        }
        for w in &s.warnings {
            let tag = if w.kind.severe() { "warning" } else { "advisory" };
            let mut lines = w.lines().into_iter();
            out += &format!("{tag}: {}\n", lines.next().unwrap_or_default());
            for line in lines {
                out += &format!("  {line}\n");
            }
        }
    }
    out
}

/// The last line after `report --out`: how many files went where, and the two a person opens, at any size (a
/// whole tree's report writes hundreds of charts; they are counted, not listed).
pub fn wrote_line(dir: &std::path::Path, files: &[String]) -> String {
    let charts = files.iter().filter(|f| f.ends_with(".svg") || f.ends_with(".png")).count();
    let folders: std::collections::BTreeSet<&str> =
        files.iter().filter_map(|f| f.strip_prefix("runs/")).filter_map(|f| f.split('/').next()).collect();
    let place = match folders.len() {
        0 => String::new(),
        1 => " in runs/".to_string(),
        n => format!(" in {n} run folders under runs/"),
    };
    let open = ["report.html", "report.md"].map(|f| dir.join(f).display().to_string());
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    format!(
        "wrote {} to {}: {} and {}{place}; open {} or {}",
        count(files.len(), "file"),
        dir.display(),
        count(files.len() - charts, "report file"),
        count(charts, "chart"),
        open[0],
        open[1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;
    use crate::load::Loaded;

    #[test]
    fn a_long_answer_is_broken_after_its_clauses() {
        let text = format!("  run: {}", ["a clause of forty characters, give or take"; 6].join("; "));
        let wrapped = wrap(&text, "      ");
        assert!(wrapped.lines().count() > 1 && wrapped.lines().all(|l| l.chars().count() <= LINE_WIDTH), "{wrapped}");
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("      a clause")), "{wrapped}");
        assert_eq!(wrapped.replace(";\n      ", "; "), format!("{text}\n"), "nothing lost or added");
        assert_eq!(wrap("  short", "    "), "  short\n");
    }

    #[test]
    fn runs_on_one_gpu_each_put_each_ratio_on_a_line_of_its_own_without_naming_the_gpu_again() {
        let mut workers = Vec::new();
        for (run, gpu) in [("run-a", "GPU-a"), ("run-b", "GPU-b")] {
            for mode in ["timeslice", "mps"] {
                for i in 0..2 {
                    let mut w = synthetic(mode, 2, i, 0, 20, 1_000_000, 0);
                    (w.run_id, w.gpu.uuid) = (run.into(), gpu.into());
                    workers.push(w);
                }
            }
        }
        let text = render(&super::super::model::build(&Loaded { workers, sources: 8, ..Default::default() }));
        assert!(text.contains("  2 workers:\n    throughput MPS / time-slicing"), "{text}");
        assert!(!text.contains("workers on GPU-"), "{text}");
    }

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
        assert!(text.contains("  4 workers on GPU-0:\n    throughput MPS / time-slicing"), "{text}");
        assert!(text.contains("warning: workers on several GPUs"), "{text}");
        assert_eq!(text.matches("mps x4 on 2 GPUs").count(), 2, "once per GPU's block: {text}");
        assert!(!text.contains("workers reported"), "a run complete across GPUs is complete: {text}");
    }

    #[test]
    fn the_line_after_writing_counts_files_instead_of_listing_them() {
        let mut files: Vec<String> =
            ["report.json", "report.md", "report.html", "summary.csv", "trace.json"].map(String::from).to_vec();
        for run in 0..300 {
            files.push(format!("runs/r{run}-GPU-1-0000/latency.svg"));
            files.push(format!("runs/r{run}-GPU-1-0000/latency.png"));
        }
        let line = wrote_line(std::path::Path::new("out"), &files);
        assert_eq!(line, "wrote 605 files to out: 5 report files and 600 charts in 300 run folders under runs/; open out/report.html or out/report.md");
        let one_run = wrote_line(std::path::Path::new("out"), &files[..7]);
        assert!(one_run.contains("7 files to out: 5 report files and 2 charts in runs/; open"), "{one_run}");
        let top = wrote_line(std::path::Path::new("out"), &["report.json".into(), "latency.svg".into()]);
        assert!(top.contains("2 files to out: 1 report file and 1 chart; open out/report.html"), "{top}");
    }
}
