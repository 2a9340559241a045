//! `summary.csv`: one row per repeat of each group, plain numbers (ns, per second), for spreadsheets; each row
//! also carries its group's figures across repeats (median and 95% interval) and whether it is valid. Pure.

use super::model::Report;

/// A text cell from the results (run id, mode, GPU name), quoted where it holds a separator, a quote or a line
/// break (`\r` too), and defused where a spreadsheet would run it as a formula (a leading `=`, `+`, `-`, `@`,
/// tab or `\r` gets a `'`, as OWASP advises for CSV injection).
pub fn field(text: &str) -> String {
    let defused = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

pub fn render(report: &Report) -> String {
    let mut out = String::from(
        "run_id,mode,workers,gpu_uuid,gpu_name,kernel,verified_workers,workers_reported,complete,kernels,makespan_ns,busy_ns,overlap_fraction,mean_concurrency,kernels_per_s,kernels_per_s_ci_low,kernels_per_s_ci_high,flop_per_s,bytes_per_s,latency_samples,p50_ns,p90_ns,p99_ns,p999_ns,max_ns,fairness_jain,mean_slowdown_vs_solo,repeat,repeats,valid,p99_bound_low_ns,p99_bound_high_ns,kernels_per_s_median,kernels_per_s_across_low,kernels_per_s_across_high,p99_median_ns,p99_across_low_ns,p99_across_high_ns,tokens_per_s,ttft_p50_ns,ttft_p99_ns,tpot_p50_ns,tpot_p99_ns\n",
    );
    for g in &report.analysis.groups {
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.6e}")).unwrap_or_default();
        let figures = report.analysis.figures.iter().find(|f| f.key == g.key);
        let spread = |s: Option<&crate::analysis::repeats::Spread>| match s {
            Some(s) => [
                format!("{:.3}", s.median),
                s.across.map(|i| format!("{:.3}", i.low)).unwrap_or_default(),
                s.across.map(|i| format!("{:.3}", i.high)).unwrap_or_default(),
            ],
            None => Default::default(),
        };
        let bound = |i: usize| g.latency.p99_bounds_ns.map(|b| b[i].to_string()).unwrap_or_default();
        let cells: Vec<String> = [
            field(&g.key.run_id),
            field(&g.key.mode),
            g.key.workers.to_string(),
            field(&g.key.gpu_uuid),
            field(&g.gpu_name),
            g.shape.map(|s| s.kernel.to_string()).unwrap_or_else(|| "command".into()),
            g.verified_workers.to_string(),
            g.workers_reported.to_string(),
            g.complete.to_string(),
            g.kernels.to_string(),
            g.makespan_ns.to_string(),
            g.busy_ns.map(|b| b.to_string()).unwrap_or_default(),
            g.overlap_fraction.map(|f| format!("{f:.6}")).unwrap_or_default(),
            g.mean_concurrency.map(|c| format!("{c:.4}")).unwrap_or_default(),
            format!("{:.3}", g.kernels_per_s.value),
            format!("{:.3}", g.kernels_per_s.ci_low),
            format!("{:.3}", g.kernels_per_s.ci_high),
            opt(g.flop_per_s),
            opt(g.bytes_per_s),
            g.latency.samples.to_string(),
            g.latency.p50_ns.to_string(),
            g.latency.p90_ns.to_string(),
            g.latency.p99_ns.to_string(),
            g.latency.p999_ns.to_string(),
            g.latency.max_ns.to_string(),
            format!("{:.6}", g.fairness_jain),
            g.mean_slowdown().map(|s| format!("{s:.4}")).unwrap_or_default(),
            (g.repeat + 1).to_string(),
            figures.map(|f| f.repeats.len().to_string()).unwrap_or_default(),
            g.invalid.is_empty().to_string(),
            bound(0),
            bound(1),
        ]
        .into_iter()
        .chain(spread(figures.map(|f| &f.throughput)))
        .chain(spread(figures.and_then(|f| f.p99_ns.as_ref())))
        .chain([
            g.tokens_per_s.map(|t| format!("{t:.3}")).unwrap_or_default(),
            g.ttft.map(|l| l.p50_ns.to_string()).unwrap_or_default(),
            g.ttft.map(|l| l.p99_ns.to_string()).unwrap_or_default(),
            g.tpot.map(|l| l.p50_ns.to_string()).unwrap_or_default(),
            g.tpot.map(|l| l.p99_ns.to_string()).unwrap_or_default(),
        ])
        .collect::<Vec<String>>();
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn every_row_has_the_headers_cells_and_a_streamed_group_its_ttft_and_tpot() {
        use crate::result::histogram::{new_latency_histogram, record, Recorded};
        let mut w = crate::analysis::tests::synthetic("mps", 1, 0, 0, 100, 1_000_000, 0);
        let mut h = new_latency_histogram();
        (1..=100u64).for_each(|i| record(&mut h, i * 1_000_000));
        w.streaming = Some(crate::load::Streaming { ttft: Recorded::of(&h), tpot: None });
        let plain = crate::analysis::tests::synthetic("timeslice", 1, 0, 0, 100, 1_000_000, 0);
        let loaded = crate::load::Loaded { workers: vec![w, plain], sources: 2, ..Default::default() };
        let text = super::render(&crate::report::model::build(&loaded));
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{text}");
        let at = |name: &str| rows[0].iter().position(|h| *h == name).unwrap();
        let mps = rows.iter().find(|r| r[1] == "mps").unwrap();
        assert_eq!((mps[at("ttft_p99_ns")], mps[at("tpot_p99_ns")]), ("99024895", ""));
        assert_eq!(rows.iter().find(|r| r[1] == "timeslice").unwrap()[at("ttft_p50_ns")], "");
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(field("compare-1"), "compare-1");
        assert_eq!(field("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
        assert_eq!(field("+1"), "'+1");
        assert_eq!(field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(field("-2"), "'-2");
        assert_eq!(field("a\rb"), "\"a\rb\"");
        assert_eq!(field("a,b"), "\"a,b\"");
    }
}
