//! `report.html`: one self-contained page (charts inline as SVG, no external resources), in the order of
//! `report.md`: the answer, an index of the runs, one section per run, loading notes. Wide tables scroll inside
//! their box, so the page itself never overflows. Pure.

use super::model::Report;
use super::sections::{anchor, by_study, sections, RunSection, ANSWER_RUNS};
use super::table;
use crate::load::runs::utc_stamp;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}\
th{background:#f3f3f3}td:nth-child(2){text-align:left}.scroll{overflow-x:auto;max-width:100%}\
.answer{background:#f5f9ff;border-left:4px solid #1f77b4;padding:.5em 1em}.severe{color:#a00;font-weight:bold}\
.advisory{color:#666}code{overflow-wrap:anywhere}figure{margin:1.5em 0}svg{max-width:100%;height:auto}\
section{border-top:1px solid #ddd;margin-top:2em}";

fn table_html(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut out = String::from("<div class=\"scroll\"><table><tr>");
    for h in header {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    for row in rows {
        out += "<tr>";
        for cell in row {
            out += &format!("<td>{}</td>", escape(&cell));
        }
        out += "</tr>\n";
    }
    out + "</table></div>\n"
}

/// `charts`: (run id, GPU UUID, title, inline SVG text).
pub fn render(report: &Report, charts: &[(String, String, String, String)]) -> String {
    let runs = sections(report);
    let several_gpus = table::several_gpus(report);
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>sharebench report</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>sharebench report</h1>\n<p>{} workers' results from {} sources, {} run(s).</p>\n<div class=\"answer\">\
         <h2>The answer</h2>\n",
        report.workers,
        report.sources,
        runs.len()
    );
    let blocks = by_study(&report.studies, &runs);
    for study in blocks.iter().filter_map(|b| b.study.map(|st| (st, b.runs.len()))) {
        let (st, n) = study;
        out += &format!("<p><b>{}</b> (<code>{}</code>):</p><ul>\n", escape(&st.title), escape(&st.dir));
        for line in &st.answer {
            out += &format!("<li>{}</li>\n", escape(line));
        }
        out += &format!("<li class=\"advisory\">the runs of its {n} points are in the index below</li></ul>\n");
    }
    let loose: Vec<&RunSection> = blocks.iter().filter(|b| b.study.is_none()).flat_map(|b| b.runs.clone()).collect();
    for s in loose {
        out += &format!("<p><b>{}</b> on {}:</p><ul>\n", escape(&s.title(several_gpus)), escape(s.gpu_name));
        let shown = if runs.len() > ANSWER_RUNS { s.headline.len().saturating_sub(1) } else { 0 };
        for line in &s.headline[shown..] {
            out += &format!("<li>{}</li>\n", escape(line));
        }
        if s.severe_warnings() > 0 {
            out += &format!(
                "<li class=\"severe\">{} severe warning(s): see the run's section</li>\n",
                s.severe_warnings()
            );
        }
        out += "</ul>\n";
    }
    out += "</div>\n";
    let ordered: Vec<(&RunSection, String)> = blocks
        .iter()
        .flat_map(|b| b.runs.iter().map(move |s| (*s, b.study.map(|st| st.dir.clone()).unwrap_or_else(|| "-".into()))))
        .collect();
    if runs.len() > 1 {
        out += "<h2>Runs</h2>\n<div class=\"scroll\"><table><tr><th>run</th><th>plan</th><th>GPU</th><th>workload</th><th>started (UTC)</th><th>groups</th><th>severe warnings</th></tr>\n";
        for (s, study) in &ordered {
            let title = s.title(several_gpus);
            out += &format!(
                "<tr><td><a href=\"#{}\">{}</a></td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                anchor(&format!("Run {title}")),
                escape(&title),
                escape(study),
                escape(s.gpu_name),
                escape(&s.workload),
                utc_stamp(s.started_unix_ns),
                s.groups.len(),
                s.severe_warnings()
            );
        }
        out += "</table></div>\n";
    }
    // Past a few runs, each run's section is collapsed (its summary names it and its answer): the page stays
    // short enough to read, and the index links open the one asked for.
    let collapse = runs.len() > ANSWER_RUNS;
    for (s, _) in &ordered {
        // A one-run report's answer is its headline already.
        let body = section(s, several_gpus, runs.len() > 1, charts);
        out += &match collapse {
            true => format!(
                "<details><summary>Run {}: {}</summary>\n{body}</details>\n",
                escape(&s.title(several_gpus)),
                escape(s.headline.last().map(String::as_str).unwrap_or("-"))
            ),
            false => body,
        };
    }
    if !report.analysis.shares.is_empty() {
        out += &format!("<section><h2>SM share: asked and got</h2><p>{}</p>\n", escape(super::sections::SHARE_INTRO));
        let rows = super::sections::share_rows(&report.analysis.shares);
        out += &table_html(&super::sections::SHARE_HEADER, rows.into_iter());
        out += "</section>\n";
    }
    if !report.analysis.isolation.is_empty() {
        out += "<section><h2>Isolation: what a neighbour's fault or memory did to the others</h2>\n";
        for b in super::sections::isolation_blocks(&report.analysis.isolation) {
            let v = b.verdict;
            out += &format!("<p>{}, {} x{}{}:</p><ul>\n", escape(&v.run_id), v.mode, v.workers, b.repeats_label());
            out += &v.lines.iter().map(|l| format!("<li>{}</li>\n", escape(l))).collect::<String>();
            out += "</ul>\n";
        }
        out += "</section>\n";
    }
    if !report.notes.is_empty() || !report.excluded.is_empty() {
        out += "<section><h2>Loading</h2><ul>\n";
        for n in &report.notes {
            out += &format!("<li>note: {}</li>\n", escape(n));
        }
        for e in &report.excluded {
            out += &format!("<li class=\"severe\">excluded {}: {}</li>\n", escape(&e.source), escape(&e.reason));
        }
        out += "</ul></section>\n";
    }
    out += "<p>Numbers behind every chart: <a href=\"report.json\">report.json</a>, <a href=\"summary.csv\">summary.csv</a>; timeline: <a href=\"trace.json\">trace.json</a> (open in ui.perfetto.dev).</p>\n</body></html>\n";
    out
}

fn section(
    s: &RunSection,
    several_gpus: bool,
    with_headline: bool,
    charts: &[(String, String, String, String)],
) -> String {
    let title = format!("Run {}", s.title(several_gpus));
    let mut out = format!(
        "<section id=\"{}\"><h2>{}</h2>\n<p>GPU <b>{}</b> (<code>{}</code>), driver {}; workload <code>{}</code>; \
         started {} UTC; produced by <code>{}</code> (worker 0's command).</p>\n<ul>\n",
        anchor(&title),
        escape(&title),
        escape(s.gpu_name),
        escape(s.gpu_uuid),
        escape(s.driver),
        escape(&s.workload),
        utc_stamp(s.started_unix_ns),
        escape(&s.command)
    );
    for line in s.headline.iter().filter(|_| with_headline) {
        out += &format!("<li>{}</li>\n", escape(line));
    }
    out += "</ul>\n";
    let rows = s.rows();
    let unbounded = rows.iter().any(|r| r[9].ends_with(table::UNBOUNDED));
    out += &table_html(&table::header(&s.groups), rows.into_iter());
    if unbounded {
        out += &format!("<p class=\"advisory\">{}</p>\n", escape(table::UNBOUNDED_NOTE));
    }
    if s.repeated() {
        out += "<details><summary>Each repeat (modes interleaved; the interval is the run's own, the p99 bound distribution-free)</summary>\n";
        out += &table_html(&table::repeat_header(&s.groups), s.repeat_rows().into_iter());
        out += "</details>\n";
    }
    if !s.comparisons.is_empty() {
        out += "<p>Comparisons (median over repeats, 95% interval across repeats):</p><ul>\n";
        for c in &s.comparisons {
            out += &format!("<li>{}</li>\n", escape(&table::comparison_line(c, several_gpus)));
        }
        out += "</ul>\n";
    }
    let conditions = super::sections::conditions_rows(s);
    if !conditions.is_empty() {
        out += "<p>GPU conditions during each group (NVML telemetry sampled by worker 0):</p>\n";
        out += &table_html(&super::sections::CONDITIONS_HEADER, conditions.into_iter());
    }
    let across = super::sections::streamed_across_rows(s);
    if !across.is_empty() {
        out += &format!("<p>{}</p>\n", escape(super::sections::STREAMED_ACROSS_INTRO));
        out += &table_html(&super::sections::STREAMED_ACROSS_HEADER, across.into_iter());
    }
    let streaming = super::sections::streaming_rows(s);
    if !streaming.is_empty() {
        out += "<p>Streamed requests, each repeat (time to first token, and per output token after it; exact over every request):</p>\n";
        out += &table_html(&super::sections::STREAMING_HEADER, streaming.into_iter());
    }
    let memory = super::sections::memory_lines(s);
    if !memory.is_empty() {
        out += "<p>GPU memory (as each group's first worker's context saw it, and the limit in force):</p><ul>\n";
        out += &memory.iter().map(|l| format!("<li>{}</li>\n", escape(l))).collect::<String>();
        out += "</ul>\n";
    }
    for w in &s.warnings {
        let (class, tag) = if w.kind.severe() { ("severe", "severe") } else { ("advisory", "advisory") };
        out += &format!("<p class=\"{class}\">{tag}: {}</p>\n", escape(&w.line()));
    }
    for (_, _, title, svg) in charts.iter().filter(|c| c.0 == s.run_id && c.1 == s.gpu_uuid) {
        // The chart carries its title; the figure names it for screen readers only.
        out += &format!("<figure aria-label=\"{}\">\n{}\n</figure>\n", escape(title), svg);
    }
    out + "</section>\n"
}
