//! Capacity-plan outputs: the table as text, plan.md, plan.csv and a self-contained plan.html. Pure (returns
//! text); `plan` writes the files.

use crate::analysis::capacity::{self, BlastRadius, Point};
use crate::scenario::Scenario;
use crate::units::format_ns;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanReport {
    pub format: String,
    pub scenario: Scenario,
    pub slo_p99_ms: f64,
    /// The streaming SLOs (time to first token, time per output token, p99, ms), where the plan had them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_ttft_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_tpot_p99_ms: Option<f64>,
    pub rate_override: Option<f64>,
    pub duration_s: f64,
    pub gpu: Option<String>,
    /// Where the points ran: local worker processes, or Kubernetes Jobs through which overlays.
    pub ran_on: String,
    pub points: Vec<Point>,
    /// Most Pods per GPU meeting the SLO, per mode (`None`: not even one).
    pub capacity: Vec<(String, Option<u32>)>,
    /// With `--search rate`: (setting, Pods, highest rate per Pod meeting the SLO).
    #[serde(default)]
    pub max_rate: Vec<(String, u32, Option<f64>)>,
    /// With `--inject-fault`: which workers one worker's GPU fault took down, per mode.
    #[serde(default)]
    pub blast_radius: Vec<BlastRadius>,
}

/// Column titles of the points table, shared by every format.
const POINT_HEADER: [&str; 11] = [
    "setting",
    "pods",
    "req/s per Pod",
    "processes",
    "p99 (SLO group, median repeat)",
    "p99 upper bound",
    "repeats within SLO",
    "samples",
    "SLO group req/s",
    "all req/s",
    "verdict",
];

/// One point as table cells, shared by every format.
fn point_cells(p: &Point) -> [String; 11] {
    [
        p.mode.clone(),
        p.pods.to_string(),
        p.rate_per_pod.map(|r| format!("{r:.0}")).unwrap_or_else(|| "-".into()),
        p.processes.to_string(),
        format_ns(p.slo_latency.p99_ns as f64),
        p.p99_upper_ns.map(format_ns).unwrap_or_else(|| "none (too few samples)".into()),
        format!("{} of {}", p.repeats_within, p.repeats.len()),
        p.slo_latency.samples.to_string(),
        format!("{:.0}", p.slo_group_throughput),
        format!("{:.0}", p.total_throughput),
        format!("{:?}{}", p.verdict, if p.conditions.is_empty() { "" } else { " (flagged conditions)" }).to_lowercase(),
    ]
}

/// The study a plan's `plan.json` makes in a report of many runs: its title and its own capacity answer
/// (`None`: not a plan this sharebench reads).
pub fn study(dir: &str, json: &serde_json::Value) -> Option<crate::load::studies::Study> {
    let plan = PlanReport::deserialize(json).ok().filter(|p| p.format == "sharebench-plan")?;
    let title = format!(
        "plan {}, SLO p99 {} ms, {} points",
        crate::units::printable(&plan.scenario.name),
        plan.slo_p99_ms,
        plan.points.len()
    );
    let answer = answer(&plan).iter().map(|l| crate::units::printable(l)).collect();
    Some(crate::load::studies::Study { dir: dir.to_string(), title, answer })
}

/// The capacity table as text: one line per point, then the answer per mode.
/// The points measured under flagged GPU conditions (clocks moved, throttling, other processes on the GPU).
fn conditions_lines(plan: &PlanReport, indent: &str) -> String {
    plan.points
        .iter()
        .filter(|p| !p.conditions.is_empty())
        .map(|p| {
            format!(
                "{indent}{} {} pods: measured under flagged GPU conditions: {}\n",
                p.mode,
                p.pods,
                p.conditions.join("; ")
            )
        })
        .collect()
}

/// How sure a point's verdict is, from its repeats: `every repeat within 5 ms (upper bound 4.6 ms)`,
/// `failed in 2 of 3 repeats`.
fn confidence(p: &Point, slo_ms: f64) -> String {
    latency_confidence(p, slo_ms) + &streaming_confidence(p)
}

/// `; TTFT p99 61.2 ms against 200 ms: meets` for each streaming SLO the point was judged against.
fn streaming_confidence(p: &Point) -> String {
    p.streaming
        .iter()
        .map(|f| {
            let name = if f.figure == "ttft" { "TTFT" } else { "TPOT" };
            let p99 = f.p99_median_ns.map(format_ns).unwrap_or_else(|| "not reported".into());
            let verdict = match f.verdict {
                capacity::Verdict::Meets => "meets",
                capacity::Verdict::Violates => "violates",
                capacity::Verdict::Invalid => "cannot be judged (too few samples, or a repeat without it)",
                capacity::Verdict::Failed => "workers failed",
            };
            let upper = f.p99_upper_ns.map(|u| format!(" (upper bound {})", format_ns(u))).unwrap_or_default();
            format!("; {name} p99 {p99}{upper} against {}: {verdict}", format_ns(f.slo_ns as f64))
        })
        .collect()
}

/// The latency's own verdict for a plan written before it was recorded: a point that streaming SLOs failed
/// while every repeat and the bound met the latency's SLO met it.
fn latency_verdict_of_older_plan(p: &Point, slo_ms: f64) -> capacity::Verdict {
    let n = (p.repeats.len() as u32).max(1);
    let bound_within = p.p99_upper_ns.is_some_and(|u| u <= slo_ms * 1e6);
    match p.verdict {
        capacity::Verdict::Violates if !p.streaming.is_empty() && p.repeats_within == n && bound_within => {
            capacity::Verdict::Meets
        }
        v => v,
    }
}

fn latency_confidence(p: &Point, slo_ms: f64) -> String {
    // Plans written before repeats existed ran every point once and recorded no repeat.
    let n = (p.repeats.len() as u32).max(1);
    let upper = p.p99_upper_ns.map(|u| format!(", p99 upper bound {}", format_ns(u))).unwrap_or_default();
    match p.latency_verdict.unwrap_or_else(|| latency_verdict_of_older_plan(p, slo_ms)) {
        capacity::Verdict::Meets if n == 1 => format!("its one repeat within {slo_ms} ms{upper}"),
        capacity::Verdict::Meets => format!("every one of {n} repeats within {slo_ms} ms{upper}"),
        capacity::Verdict::Violates if n == 1 => format!("over {slo_ms} ms in its one repeat"),
        capacity::Verdict::Violates if p.repeats_within == 0 => format!("over {slo_ms} ms in every one of {n} repeats"),
        capacity::Verdict::Violates if p.repeats_within == n => {
            format!("every repeat within {slo_ms} ms, but not the bound{upper}")
        }
        capacity::Verdict::Violates => format!("over {slo_ms} ms in {} of {n} repeats", n - p.repeats_within),
        capacity::Verdict::Invalid => "too few samples for a p99 bound".into(),
        capacity::Verdict::Failed => "workers failed".into(),
    }
}

/// `1 Pod per GPU meets`, `4 Pods per GPU meet`.
fn pods_meet(n: u32) -> String {
    if n == 1 {
        "1 Pod per GPU meets".into()
    } else {
        format!("{n} Pods per GPU meet")
    }
}

/// The capacity answer, one line per setting: how many Pods per GPU meet the SLO and how sure that is (or, for a
/// rate search, how many requests/s per Pod), saying so where the largest point tried still met it.
pub fn answer(plan: &PlanReport) -> Vec<String> {
    let mut out = Vec::new();
    for (mode, pods) in &plan.capacity {
        let points: Vec<&Point> = plan.points.iter().filter(|p| &p.mode == mode).collect();
        let at = |n: u32| points.iter().find(|p| p.pods == n);
        let next_failure = |after: u32| points.iter().filter(|p| p.pods > after).min_by_key(|p| p.pods);
        out.push(match pods {
            Some(n) => {
                let most_tried = points.iter().map(|p| p.pods).max() == Some(*n);
                let sure = at(*n).map(|p| format!(" ({})", confidence(p, plan.slo_p99_ms))).unwrap_or_default();
                let beyond = match next_failure(*n) {
                    Some(p) => format!("; {} Pods: {}", p.pods, confidence(p, plan.slo_p99_ms)),
                    None if most_tried => " (the most tried: more may fit)".into(),
                    None => String::new(),
                };
                let bound = if most_tried { "at least" } else { "at most" };
                format!("{mode}: {bound} {} the SLO{sure}{beyond}", pods_meet(*n))
            }
            None => match next_failure(0) {
                Some(p) => {
                    format!("{mode}: not even one Pod meets the SLO (1 Pod: {})", confidence(p, plan.slo_p99_ms))
                }
                None => format!("{mode}: not even one Pod meets the SLO (no point ran)"),
            },
        });
    }
    for (setting, pods, rate) in &plan.max_rate {
        out.push(match rate {
            Some(r) => format!("{setting}: at {pods} Pods, up to {r:.0} requests/s per Pod meet the SLO"),
            None => format!("{setting}: at {pods} Pods, no rate tried meets the SLO"),
        });
    }
    out
}

pub fn render(plan: &PlanReport) -> String {
    let rows: Vec<Vec<String>> = plan.points.iter().map(|p| point_cells(p).to_vec()).collect();
    let mut out = format!(
        "scenario {} (SLO group {}), SLO p99 <= {} ms, at least {} s per point\n",
        plan.scenario.name,
        plan.scenario.slo_group().name,
        plan.slo_p99_ms,
        plan.duration_s
    );
    out += &format!("ran as {}; GPU: {}\n", plan.ran_on, plan.gpu.as_deref().unwrap_or("?"));
    out += &super::table::aligned(&POINT_HEADER, &rows);
    for p in plan.points.iter().filter(|p| !p.failures.is_empty() && p.verdict == capacity::Verdict::Failed) {
        out += &format!("  {} {} pods failed: {}\n", p.mode, p.pods, p.failures.join("; "));
    }
    out += &conditions_lines(plan, "  ");
    for line in answer(plan) {
        out += &format!("{line}\n");
    }
    for b in &plan.blast_radius {
        out += &format!(
            "{}: a GPU fault in one of {} workers took down {} of the {} others\n",
            b.mode, b.processes, b.others_failed, b.others
        );
    }
    out
}

pub fn markdown(plan: &PlanReport, charts: &[(String, String)]) -> String {
    let mut out = format!("# Capacity plan: {}\n\n", plan.scenario.name);
    out += "## The answer\n\n";
    for line in answer(plan) {
        out += &format!("- {line}\n");
    }
    out += &format!("\n{}\n\n", plan.scenario.description);
    out += &format!(
        "GPU: {}. Ran as {}. SLO: p99 of group `{}` <= {} ms. Each point measured for {} s at least (longer where its SLO group needed more requests for a p99 bound).\n\n",
        plan.gpu.as_deref().unwrap_or("?"),
        plan.ran_on,
        plan.scenario.slo_group().name,
        plan.slo_p99_ms,
        plan.duration_s
    );
    if !plan.capacity.is_empty() {
        out += "| mode | max Pods/GPU |\n|---|---|\n";
        for (mode, pods) in &plan.capacity {
            out += &format!("| {mode} | {} |\n", pods.map(|n| n.to_string()).unwrap_or_else(|| "none".into()));
        }
    }
    if !plan.max_rate.is_empty() {
        out += "| mode | Pods | max requests/s per Pod |\n|---|---|---|\n";
        for (mode, pods, rate) in &plan.max_rate {
            out += &format!(
                "| {mode} | {pods} | {} |\n",
                rate.map(|r| format!("{r:.0}")).unwrap_or_else(|| "none".into())
            );
        }
    }
    out += &format!("\n| {} |\n|{}\n", POINT_HEADER.join(" | "), "---|".repeat(POINT_HEADER.len()));
    for p in &plan.points {
        out += &format!("| {} |\n", point_cells(p).join(" | "));
    }
    out += &conditions_lines(plan, "\n- ");
    if !plan.blast_radius.is_empty() {
        out += "\n## Blast radius\n\nOne worker triggered a real GPU fault (an illegal address) mid-run:\n\n| mode | Pods | workers | others taken down |\n|---|---|---|---|\n";
        for b in &plan.blast_radius {
            out += &format!("| {} | {} | {} | {} of {} |\n", b.mode, b.pods, b.processes, b.others_failed, b.others);
        }
    }
    out += &format!(
        "\nA point meets the SLO when every repeat's p99 is within it and so is the p99's upper bound: across repeats ({}), or with one repeat its distribution-free 95% bound. `Invalid`: a repeat had too few samples for a p99 bound ({} at least; a slow open-loop tenant needs a longer `--max-point-duration` or a higher rate). `Failed`: a worker failed (see each point's directory under points/: worker logs, or pods.log on Kubernetes).\n",
        crate::analysis::repeats::METHOD,
        crate::analysis::percentile_bounds::min_samples_95(0.99)
    );
    for (title, image) in charts {
        out += &format!("\n![{title}]({image})\n");
    }
    out
}

/// plan.csv: one row per point.
pub fn csv(plan: &PlanReport) -> String {
    let mut out =
        String::from("setting,pods,rate_per_pod,processes,p99_ns,p50_ns,samples,slo_group_req_per_s,total_req_per_s,verdict,repeats,repeats_within_slo,p99_upper_ns,p99_per_repeat_ns\n");
    for p in &plan.points {
        let per_repeat: Vec<String> = p.repeats.iter().map(|r| r.latency.p99_ns.to_string()).collect();
        out += &format!(
            "{},{},{},{},{},{},{},{:.3},{:.3},{:?},{},{},{},{}\n",
            super::csv::field(&p.mode),
            p.pods,
            p.rate_per_pod.map(|r| format!("{r:.1}")).unwrap_or_default(),
            p.processes,
            p.slo_latency.p99_ns,
            p.slo_latency.p50_ns,
            p.slo_latency.samples,
            p.slo_group_throughput,
            p.total_throughput,
            p.verdict,
            p.repeats.len(),
            p.repeats_within,
            p.p99_upper_ns.map(|u| format!("{u:.0}")).unwrap_or_default(),
            per_repeat.join(";")
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// plan.html: the capacity answer, the points and the chart (inline SVG), with no external resources.
pub fn html(plan: &PlanReport, chart_svg: &str) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Capacity plan: {name}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}svg{{max-width:100%;height:auto}}</style></head><body>\n<h1>Capacity plan: {name}</h1>\n<p>{desc}</p>\n<p>GPU {gpu}; ran as {ran_on}; SLO p99 of group <code>{group}</code> &lt;= {slo} ms.</p>\n<table><tr><th>setting</th><th>max Pods/GPU</th></tr>\n",
        name = escape(&plan.scenario.name),
        desc = escape(&plan.scenario.description),
        gpu = escape(plan.gpu.as_deref().unwrap_or("?")),
        ran_on = escape(&plan.ran_on),
        group = escape(&plan.scenario.slo_group().name),
        slo = plan.slo_p99_ms
    );
    for (mode, pods) in &plan.capacity {
        out += &format!(
            "<tr><td>{}</td><td>{}</td></tr>\n",
            escape(mode),
            pods.map(|n| n.to_string()).unwrap_or_else(|| "none".into())
        );
    }
    out += "</table>\n<table><tr>";
    for h in POINT_HEADER {
        out += &format!("<th>{}</th>", escape(h));
    }
    out += "</tr>\n";
    for p in &plan.points {
        let cells: String = point_cells(p).iter().map(|c| format!("<td>{}</td>", escape(c))).collect();
        out += &format!("<tr>{cells}</tr>\n");
    }
    out += "</table>\n";
    for b in &plan.blast_radius {
        out += &format!(
            "<p>{}: a GPU fault in one of {} workers took down {} of the {} others.</p>\n",
            escape(&b.mode),
            b.processes,
            b.others_failed,
            b.others
        );
    }
    out += chart_svg;
    out += "\n<p>Numbers: <a href=\"plan.json\">plan.json</a>, <a href=\"plan.csv\">plan.csv</a>.</p></body></html>\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::capacity::Verdict;

    fn sample() -> PlanReport {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/inference.toml")).unwrap();
        let mut point = crate::analysis::capacity::tests::at("mps", 4, Verdict::Meets);
        (point.slo_latency, point.slo_group_throughput, point.total_throughput) = (Default::default(), 800.0, 800.0);
        PlanReport {
            format: "sharebench-plan".into(),
            scenario: Scenario::parse(&text, "inference.toml").unwrap(),
            slo_p99_ms: 5.0,
            slo_ttft_p99_ms: None,
            slo_tpot_p99_ms: None,
            rate_override: None,
            duration_s: 4.0,
            gpu: Some("NVIDIA H100 <80GB>".into()),
            ran_on: "local worker processes on GPU 0".into(),
            points: vec![point],
            capacity: vec![("mps".into(), Some(4))],
            max_rate: vec![("timeslice".into(), 2, Some(610.0))],
            blast_radius: vec![],
        }
    }

    #[test]
    fn the_capacity_answer_says_how_sure_it_is_from_the_repeats() {
        use crate::analysis::capacity::RepeatPoint;
        let mut plan = sample();
        let repeats = |n: usize| {
            (0..n as u32)
                .map(|repeat| RepeatPoint {
                    repeat,
                    latency: Default::default(),
                    ttft: None,
                    tpot: None,
                    slo_group_throughput: 0.0,
                    complete: true,
                })
                .collect::<Vec<_>>()
        };
        plan.points[0].repeats = repeats(3);
        (plan.points[0].repeats_within, plan.points[0].p99_upper_ns) = (3, Some(4_600_000.0));
        let mut six = crate::analysis::capacity::tests::at("mps", 6, Verdict::Violates);
        (six.repeats, six.repeats_within) = (repeats(3), 1);
        plan.points.push(six);
        let lines = answer(&plan);
        assert_eq!(
            lines[0],
            "mps: at most 4 Pods per GPU meet the SLO (every one of 3 repeats within 5 ms, p99 upper bound 4.60 ms); 6 Pods: over 5 ms in 2 of 3 repeats"
        );
        plan.points[1].repeats_within = 3;
        assert!(
            answer(&plan)[0].ends_with("6 Pods: every repeat within 5 ms, but not the bound"),
            "{:?}",
            answer(&plan)
        );
        // A streaming SLO group's TTFT and TPOT verdicts follow the latency's.
        let figure = |figure: &str, p99: f64, slo_ns: u64, verdict| crate::analysis::capacity::FigureVerdict {
            figure: figure.into(),
            slo_ns,
            p99_median_ns: Some(p99),
            p99_upper_ns: None,
            verdict,
        };
        plan.points[0].streaming = vec![
            figure("ttft", 61.2e6, 200_000_000, Verdict::Meets),
            figure("tpot", 24e6, 20_000_000, Verdict::Violates),
        ];
        let line = &answer(&plan)[0];
        assert!(
            line.contains("p99 upper bound 4.60 ms; TTFT p99 61.2 ms against 200 ms: meets; TPOT p99 24.0 ms against 20.0 ms: violates"),
            "{line}"
        );
        // A point that fails on its TTFT alone says its latency met the SLO, and the bound that decided.
        let mut ttft_only = plan.points[0].clone();
        (ttft_only.verdict, ttft_only.latency_verdict) = (Verdict::Violates, Some(Verdict::Meets));
        ttft_only.streaming = vec![crate::analysis::capacity::FigureVerdict {
            p99_upper_ns: Some(1.22e9),
            ..figure("ttft", 707e6, 1_000_000_000, Verdict::Violates)
        }];
        let mut older = ttft_only.clone();
        older.latency_verdict = None;
        assert_eq!(confidence(&older, 5.0), confidence(&ttft_only, 5.0), "a plan.json from before the field");
        assert_eq!(
            confidence(&ttft_only, 5.0),
            "every one of 3 repeats within 5 ms, p99 upper bound 4.60 ms; TTFT p99 707 ms (upper bound 1.22 s) against 1.00 s: violates"
        );
    }

    #[test]
    fn a_plan_is_one_study_of_a_report_with_its_own_answer_and_its_points_under_it() {
        let plan = sample();
        let json = serde_json::to_value(&plan).unwrap();
        let s = study("results/plan-inference", &json).unwrap();
        assert_eq!(s.title, "plan inference, SLO p99 5 ms, 1 points");
        assert_eq!(s.answer, answer(&plan), "the plan's own words");
        assert!(s.holds("results/plan-inference/points/mps-8/r1/results.jsonl.gz"));
        assert!(!s.holds("results/plan-inference-k8s/points/mps-8/r1/results.jsonl.gz"));
        assert_eq!(study("x", &serde_json::json!({"format": "sharebench-result"})), None);
    }

    #[test]
    fn every_format_carries_the_answer() {
        let plan = sample();
        assert!(render(&plan).contains("mps: at least 4 Pods per GPU meet the SLO"), "{}", render(&plan));
        assert!(render(&plan).contains("(the most tried: more may fit)"));
        assert!(render(&plan).contains("timeslice: at 2 Pods, up to 610 requests/s per Pod meet the SLO"));
        assert!(markdown(&plan, &[]).contains("| timeslice | 2 | 610 |"));
        assert!(markdown(&plan, &[]).contains("| mps | 4 |"));
        assert!(markdown(&plan, &[])
            .contains("| mps | 4 | - | 4 | 0 ns | none (too few samples) | 0 of 0 | 0 | 800 | 800 | meets |"));
        assert_eq!(csv(&plan).lines().nth(1), Some("mps,4,,4,0,0,0,800.000,800.000,Meets,0,0,,"));
        let page = html(&plan, "<svg></svg>");
        assert!(
            page.contains("<td>mps</td><td>4</td><td>-</td>")
                && page.contains("NVIDIA H100 &lt;80GB&gt;")
                && page.contains("<svg>")
        );
    }
}
