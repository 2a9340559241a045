//! `report.md`: GitHub-readable. The answer first; with several runs an index of them; then one section per run
//! (what ran where and when, its table, comparisons, concurrency, grouped warnings, per-worker figures and its
//! charts); loading notes and exclusions last. Pure.

use super::model::{ChartFile, Report};
use super::sections::{anchor, by_study, sections, RunSection, ANSWER_RUNS};
use super::table;
use crate::load::runs::utc_stamp;

pub fn render(report: &Report, charts: &[ChartFile]) -> String {
    let runs = sections(report);
    let several_gpus = table::several_gpus(report);
    let mut out = String::from("# sharebench report\n\n");
    out += &format!("{} workers' results from {} sources, {} run(s).\n\n", report.workers, report.sources, runs.len());
    out += "## The answer\n\n";
    let blocks = by_study(&report.studies, &runs);
    for b in &blocks {
        let Some(st) = b.study else { continue };
        out += &format!("**{}** ({}):\n\n", md(&st.title), code(&st.dir));
        for line in &st.answer {
            out += &format!("- {}\n", md(line));
        }
        out += &format!("- the runs of its {} points are in the index below\n\n", b.runs.len());
    }
    let loose: Vec<&RunSection> = blocks.iter().filter(|b| b.study.is_none()).flat_map(|b| b.runs.clone()).collect();
    if loose.len() <= ANSWER_RUNS {
        for s in &loose {
            out += &format!("**{}** on {}:\n\n", md(&s.title(several_gpus)), md(s.gpu_name));
            for line in &s.headline {
                out += &format!("- {}\n", md(line));
            }
            if s.severe_warnings() > 0 {
                out += &format!("- **{} severe warning(s)**: see the run's section\n", s.severe_warnings());
            }
            out += "\n";
        }
    } else {
        out += "One line per run (its largest worker count); each run's section has the rest.\n\n";
    }
    let ordered: Vec<(&RunSection, String)> = blocks
        .iter()
        .flat_map(|b| b.runs.iter().map(move |s| (*s, b.study.map(|st| st.dir.clone()).unwrap_or_else(|| "-".into()))))
        .collect();
    if runs.len() > 1 {
        out += "| run | plan | GPU | workload | started (UTC) | groups | answer | severe warnings |\n|---|---|---|---|---|---|---|---|\n";
        for (s, study) in &ordered {
            out += &format!(
                "| [{}](#{}) | {} | {} | {} | {} | {} | {} | {} |\n",
                md(&s.title(several_gpus)),
                anchor(&section_heading(s, several_gpus)),
                code(study),
                md(s.gpu_name),
                code(&s.workload),
                utc_stamp(s.started_unix_ns),
                s.groups.len(),
                md(s.headline.last().map(|l| l.split_once(": ").map_or(l.as_str(), |p| p.1)).unwrap_or("-")),
                s.severe_warnings()
            );
        }
        out += "\n";
    }
    for (s, _) in &ordered {
        // A one-run report's answer is its headline already.
        out += &section(s, several_gpus, runs.len() > 1, charts);
    }
    out += &share_section(&report.analysis.shares);
    out += &isolation_section(&report.analysis.isolation);
    let m = &report.analysis.method;
    out += &format!(
        "\n`verified`: workers whose sharing mode was checked (MPS membership proven, or its absence). Figures: {}; within one run: {}; p99 bounds: {}. `valid`: every repeat of the group measured at least {} s and {} latency samples. `overlap`: share of busy time during which kernels of two or more workers ran (device `%globaltimer` stamps).\n",
        m.across_repeats, m.within_run, m.percentile_bounds, m.min_duration_s, m.min_samples
    );
    if !report.notes.is_empty() || !report.excluded.is_empty() {
        out += "\n## Loading\n\n";
        for n in &report.notes {
            out += &format!("- note: {}\n", md(n));
        }
        for e in &report.excluded {
            out += &format!("- excluded {}: {}\n", code(&e.source), md(&e.reason));
        }
    }
    out
}

/// What each faulting or memory-greedy neighbour did to the others (empty: no run had one).
fn isolation_section(verdicts: &[crate::analysis::isolation::IsolationVerdict]) -> String {
    if verdicts.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n## Isolation: what a neighbour's fault or memory did to the others\n\n");
    for b in super::sections::isolation_blocks(verdicts) {
        let v = b.verdict;
        out += &format!("**{}**, {} x{}{}:\n\n", md(&v.run_id), v.mode, v.workers, b.repeats_label());
        out += &v.lines.iter().map(|l| format!("- {}\n", md(l))).collect::<String>();
        out += "\n";
    }
    out
}

/// Pods that asked MPS for part of the SMs, against the same kernel alone on the whole GPU (empty: none did).
fn share_section(rows: &[crate::analysis::share::ShareRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let header = super::sections::SHARE_HEADER;
    let mut out = format!("\n## SM share: asked and got\n\n{}\n\n", super::sections::SHARE_INTRO);
    out += &format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    for row in super::sections::share_rows(rows) {
        out += &format!("| {} |\n", cells(&row));
    }
    out
}

/// Text from the results (run ids, host and GPU names, commands, messages) as Markdown that shows it as it is:
/// no line break can start a heading, no `|` can split a table cell, no `<...>` is taken as HTML, no `*`, `_` or
/// backtick as emphasis or code, no `](` as a link.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '|' | '*' | '_' | '`' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '(' if out.ends_with(']') => out.push_str("\\("),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Text from the results as inline code: on one line, `|` escaped for tables, fenced with more backticks than
/// it holds in a row.
pub fn code(text: &str) -> String {
    let flat: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().replace('|', "\\|");
    let longest = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// A table row's cells, each shown as it is.
fn cells(row: &[String]) -> String {
    row.iter().map(|c| md(c)).collect::<Vec<_>>().join(" | ")
}

fn section_heading(s: &RunSection, several_gpus: bool) -> String {
    format!("Run {}", s.title(several_gpus))
}

fn section(s: &RunSection, several_gpus: bool, with_headline: bool, charts: &[ChartFile]) -> String {
    let mut out = format!("\n## {}\n\n", section_heading(s, several_gpus));
    out += &format!(
        "GPU **{}** ({}), driver {}; workload {}; started {} UTC; produced by {} (worker 0's command).\n\n",
        md(s.gpu_name),
        code(s.gpu_uuid),
        md(s.driver),
        code(&s.workload),
        utc_stamp(s.started_unix_ns),
        code(&s.command)
    );
    for line in s.headline.iter().filter(|_| with_headline) {
        out += &format!("- {}\n", md(line));
    }
    let header = table::header(&s.groups);
    out += &format!("\n| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
    let rows = s.rows();
    for row in &rows {
        out += &format!("| {} |\n", cells(row));
    }
    if rows.iter().any(|r| r[9].ends_with(table::UNBOUNDED)) {
        out += &format!("\n{}\n", table::UNBOUNDED_NOTE);
    }
    if s.repeated() {
        let header = table::repeat_header(&s.groups);
        out += "\nEach repeat (modes interleaved; the interval is the run's own, the p99 bound distribution-free):\n\n";
        out += &format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
        for row in s.repeat_rows() {
            out += &format!("| {} |\n", cells(&row));
        }
    }
    if !s.comparisons.is_empty() {
        out += "\nComparisons (median over repeats, 95% interval across repeats):\n\n";
        for c in &s.comparisons {
            out += &format!("- {}\n", md(&table::comparison_line(c, several_gpus)));
        }
    }
    let conditions = super::sections::conditions_rows(s);
    if !conditions.is_empty() {
        let header = super::sections::CONDITIONS_HEADER;
        out += "\nGPU conditions during each group (NVML telemetry sampled by worker 0):\n\n";
        out += &format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
        for row in conditions {
            out += &format!("| {} |\n", cells(&row));
        }
    }
    let across = super::sections::streamed_across_rows(s);
    if !across.is_empty() {
        let header = super::sections::STREAMED_ACROSS_HEADER;
        out += &format!("\n{}\n\n", super::sections::STREAMED_ACROSS_INTRO);
        out += &format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
        for row in across {
            out += &format!("| {} |\n", cells(&row));
        }
    }
    let streaming = super::sections::streaming_rows(s);
    if !streaming.is_empty() {
        let header = super::sections::STREAMING_HEADER;
        out +=
            "\nStreamed requests, each repeat (time to first token, and per output token after it; exact over every request):\n\n";
        out += &format!("| {} |\n|{}\n", header.join(" | "), "---|".repeat(header.len()));
        for row in streaming {
            out += &format!("| {} |\n", cells(&row));
        }
    }
    let memory = super::sections::memory_lines(s);
    if !memory.is_empty() {
        out += "\nGPU memory (as each group's first worker's context saw it, and the limit in force):\n\n";
        out += &memory.iter().map(|l| format!("- {}\n", md(l))).collect::<String>();
    }
    if !s.warnings.is_empty() {
        out += "\nWarnings:\n\n";
        for w in &s.warnings {
            let tag = if w.kind.severe() { "**severe**" } else { "advisory" };
            out += &format!("- {tag}: {}\n", md(&w.line()));
        }
    }
    out += "\nConcurrency (share of busy time with exactly k workers' kernels on the GPU):\n\n| mode | workers | k = 1 | k = 2 | k = 3 | k >= 4 |\n|---|---|---|---|---|---|\n";
    for g in &s.groups {
        let Some(busy) = g.busy_ns else {
            out += &format!(
                "| {} | {} | not measurable: a foreign command's kernels are not visible to sharebench |||| \n",
                g.key.mode, g.key.workers
            );
            continue;
        };
        let share = |k: usize| g.time_at_concurrency_ns.get(k).copied().unwrap_or(0) as f64 / busy.max(1) as f64;
        let rest: f64 = (4..g.time_at_concurrency_ns.len()).map(share).sum();
        out += &format!(
            "| {} | {} | {:.1}% | {:.1}% | {:.1}% | {:.1}% |\n",
            g.key.mode,
            g.key.workers,
            share(1) * 100.0,
            share(2) * 100.0,
            share(3) * 100.0,
            rest * 100.0
        );
    }
    let unit = table::Unit::of(&s.groups).name();
    out += &format!("\nPer worker:\n\n| mode | workers | worker | host | verdict | {unit} | {unit}/s | p50 | p99 | mean SMs | slowdown vs solo |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for g in &s.groups {
        for w in &g.per_worker {
            out += &format!(
                "| {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |\n",
                g.key.mode,
                g.key.workers,
                w.worker,
                md(&w.host),
                w.verdict.label(),
                w.kernels,
                w.kernels_per_s,
                crate::units::format_ns(w.latency.p50_ns as f64),
                crate::units::format_ns(w.latency.p99_ns as f64),
                w.mean_sm_count.map(|n| format!("{n:.1}")).unwrap_or_else(|| "n/a".into()),
                w.slowdown_vs_solo.map(|s| format!("{s:.2}x")).unwrap_or_else(|| "-".into())
            );
        }
    }
    // SVG: sharp at any size, a third of the PNG's bytes, and rendered by GitHub; the PNG sits beside it. The
    // chart carries its title: it is the image's alt text, not a heading said twice.
    for c in charts.iter().filter(|c| c.run_id == s.run_id && c.gpu_uuid == s.gpu_uuid) {
        out += &format!("\n![{}]({})\n", md(&c.title), c.svg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_results_cannot_add_markdown() {
        // A hostname with a newline and a heading, an <img onerror>, a GPU name with a table pipe.
        let host = "node\n## injected\n<img src=x onerror=alert(1)>";
        let shown = md(host);
        assert!(!shown.contains('\n') && !shown.contains("<img") && shown.contains("\\#\\# injected"), "{shown}");
        assert_eq!(md("NVIDIA H100 | 80GB"), "NVIDIA H100 \\| 80GB");
        assert_eq!(md("[click](http://x)"), "[click]\\(http://x)");
        assert_eq!(code("python3 -c `x`"), "`` python3 -c `x` ``", "a longer fence, padded where a backtick ends it");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn each_groups_memory_and_its_limit_are_said_once_and_per_process() {
        use crate::analysis::tests::synthetic;
        use crate::load::Loaded;
        use crate::mps::memory::resolve;
        const GIB: u64 = 1 << 30;
        let mut mps = synthetic("mps", 2, 0, 0, 400, 1_500_000, 0);
        mps.gpu.context_memory = Some(resolve((15 * GIB / 2, 140 * GIB), true, Some(("0=8G", Some(8 * GIB))), None));
        let mut mps_again = synthetic("mps", 2, 1, 0, 400, 1_500_000, 0);
        mps_again.gpu.context_memory = mps.gpu.context_memory.clone();
        let mut ts = synthetic("timeslice", 2, 0, 0, 400, 1_500_000, 0);
        ts.gpu.context_memory = Some(resolve((130 * GIB, 140 * GIB), false, None, None));
        let old = synthetic("timeslice", 1, 0, 0, 400, 1_500_000, 0);
        // A second repeat saw a little less free memory: the group is still said once, by its first repeat.
        let mut second = synthetic("mps", 2, 0, 0, 400, 1_500_000, 0);
        second.config.repeat = 1;
        second.gpu.context_memory = Some(resolve((7 * GIB, 140 * GIB), true, Some(("0=8G", Some(8 * GIB))), None));
        let loaded = Loaded { workers: vec![second, mps, mps_again, ts, old], sources: 5, ..Default::default() };
        let text = render(&crate::report::model::build(&loaded), &[]);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("a Pod's context")).collect();
        assert_eq!(lines.len(), 2, "one line a group, none for a result without it: {lines:#?}");
        assert!(lines[0]
            .contains("mps x2: a Pod's context sees 7.5 GiB free of 140.0 GiB; MPS pinned memory limit 8.0 GiB"));
        assert!(lines[0].contains("per CUDA process, not per Pod"), "{}", lines[0]);
        assert!(lines[1].contains("no memory limit applies (not an MPS client)"), "{}", lines[1]);
    }

    #[test]
    fn the_sm_share_table_sets_a_lone_pod_at_its_percentage_against_the_whole_gpu() {
        use crate::analysis::tests::synthetic;
        let one_second = |mut w: crate::load::Worker, run: &str, pct: Option<u32>| {
            (w.started_unix_ns, w.finished_unix_ns, w.run_id) = (0, 1_000_000_000, run.into());
            w.config.mps_active_thread_percentage = pct;
            w.gpu.context_sm_count = 132 * pct.unwrap_or(100) / 100;
            w
        };
        let workers = vec![
            one_second(synthetic("mps", 1, 0, 0, 300, 1000, 0), "lone-25", Some(25)),
            one_second(synthetic("timeslice", 1, 0, 0, 1000, 1000, 0), "lone-100", None),
        ];
        let loaded = crate::load::Loaded { workers, sources: 2, ..Default::default() };
        let report = crate::report::model::build(&loaded);
        let text = render(&report, &[]);
        assert!(text.contains("## SM share: asked and got"), "{text}");
        assert!(text.contains("| lone-25 | - | fma 132x256 iters=1000 | 1 | 25% | 33 of 132 | 300 | 1000 | 30.0% |"));
        let html = crate::report::html::render(&report, &[]);
        assert!(html.contains("<h2>SM share: asked and got</h2>") && html.contains("<td>30.0%</td>"));
    }

    #[test]
    fn streamed_requests_get_their_first_token_and_per_token_percentiles() {
        use crate::analysis::tests::synthetic;
        use crate::result::histogram::{new_latency_histogram, record, Recorded};
        let mut ttft = new_latency_histogram();
        let mut tpot = new_latency_histogram();
        for i in 1..=100u64 {
            record(&mut ttft, i * 1_000_000);
            record(&mut tpot, 20_000_000 + i * 10_000);
        }
        let mut w = synthetic("mps", 1, 0, 0, 100, 1_000_000, 0);
        w.streaming = Some(crate::load::Streaming { ttft: Recorded::of(&ttft), tpot: Some(Recorded::of(&tpot)) });
        let mut tenant = crate::result::tenant::TenantReport::new(true);
        tenant.tokens = Some(12_800);
        w.tenant = Some(tenant);
        let plain = synthetic("timeslice", 1, 0, 0, 100, 1_000_000, 0);
        let loaded = crate::load::Loaded { workers: vec![w, plain], sources: 2, ..Default::default() };
        let report = crate::report::model::build(&loaded);
        let g = report.analysis.groups.iter().find(|g| g.key.mode == "mps").unwrap();
        let (ttft, tpot) = (g.ttft.as_ref().unwrap(), g.tpot.as_ref().unwrap());
        assert_eq!((ttft.samples, tpot.samples), (100, 100));
        let text = render(&report, &[]);
        let across = &text[text.find("Streamed requests over the repeats").expect("a table across repeats")..];
        let row = across.lines().find(|l| l.starts_with("| mps |")).expect("the streamed group's row");
        assert!(
            row.ends_with("| 99.0 ms | 20.5 ms | 21.0 ms | 1.00x | 1.00x | 1.00x |"),
            "one repeat, no interval: {row}"
        );
        let table = &text[text.find("Streamed requests, each repeat").expect("a streaming table")..];
        let rows: Vec<&str> = table.lines().skip(4).take_while(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 1, "the group without ttft_ms has no row: {rows:#?}");
        assert!(rows[0].starts_with("| mps | 1 | 1 |"), "{}", rows[0]);
        assert!(rows[0].ends_with("| 50.0 ms | 99.0 ms | 20.5 ms | 21.0 ms | 1.00x | 1.00x |"), "{}", rows[0]);
        let answer = text.lines().find(|l| l.contains("streamed: ")).expect("the answer speaks of tokens");
        assert!(
            answer.contains("streamed: mps ") && answer.contains("output tokens/s, TTFT p99 99.0 ms, TPOT p99 21.0 ms")
        );
    }

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("Run compare-1795560643"), "run-compare-1795560643");
        assert_eq!(anchor("Run plan-x@20261125T002206Z on GPU-0f1d21b0"), "run-plan-x20261125t002206z-on-gpu-0f1d21b0");
    }
}
