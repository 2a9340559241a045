//! `report.html`: one self-contained page (charts inline as SVG, no external resources). Pure.

use super::model::{describe_shape, Report};
use super::table;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `charts`: (title, inline SVG text).
pub fn render(report: &Report, charts: &[(String, String)]) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sharebench report</title>\n<style>\
body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}td:nth-child(2){text-align:left}\
.warn{color:#a33}figure{margin:1.5em 0}svg{max-width:100%;height:auto}</style></head><body>\n<h1>sharebench report</h1>\n",
    );
    if let Some(g) = report.analysis.groups.first() {
        out += &format!(
            "<p>GPU <b>{}</b> (<code>{}</code>), driver {}; workload <code>{}</code>; {} workers from {} sources.</p>\n",
            escape(&g.gpu_name),
            escape(&g.key.gpu_uuid),
            escape(g.driver_version.as_deref().unwrap_or("?")),
            escape(&describe_shape(&g.shape)),
            report.workers,
            report.sources
        );
    }
    out += "<table><tr>";
    for h in table::HEADER {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    for row in table::rows(report) {
        out += "<tr>";
        for cell in row {
            out += &format!("<td>{}</td>", escape(&cell));
        }
        out += "</tr>\n";
    }
    out += "</table>\n";
    let comparisons = table::comparison_lines(report);
    if !comparisons.is_empty() {
        out += "<h2>Comparisons</h2><ul>\n";
        for c in comparisons {
            out += &format!("<li>{}</li>\n", escape(&c));
        }
        out += "</ul>\n";
    }
    for w in &report.analysis.warnings {
        out += &format!("<p class=\"warn\">warning: {}</p>\n", escape(w));
    }
    for e in &report.excluded {
        out += &format!("<p class=\"warn\">excluded {}: {}</p>\n", escape(&e.source), escape(&e.reason));
    }
    for (title, svg) in charts {
        out += &format!("<figure><figcaption>{}</figcaption>\n{}\n</figure>\n", escape(title), svg);
    }
    out += "<p>Numbers behind every chart: <a href=\"report.json\">report.json</a>, <a href=\"summary.csv\">summary.csv</a>; timeline: <a href=\"trace.json\">trace.json</a> (open in ui.perfetto.dev).</p>\n</body></html>\n";
    out
}
