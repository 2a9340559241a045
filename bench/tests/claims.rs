//! Claims traceable to data: every figure the README and the results READMEs quote is listed in
//! `results/claims.toml` with the committed result it comes from, and re-derived here from that result by the
//! current code (the report's own words, a plan's answer recomputed from its points' raw results, or a number in
//! a run's record). The quote must appear in its document and in what the data gives, and the result must be one
//! the tool calls valid: prose cannot drift from data.

use serde::Deserialize;
use sharebench::analysis::capacity;
use sharebench::report::plan::{answer, PlanReport};
use sharebench::report::{markdown, model, terminal};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct Claims {
    claim: Vec<Claim>,
}

/// One quoted figure: where it is quoted, the words, and exactly one source.
#[derive(Deserialize)]
struct Claim {
    /// The document that quotes it, from the repository root.
    file: String,
    quote: String,
    /// A results directory whose report says it.
    report: Option<String>,
    /// A plan directory whose capacity answer, recomputed from its points' results, says it.
    plan: Option<String>,
    /// A JSON file, the pointer of a number in it, and the decimals it is quoted with.
    json: Option<String>,
    pointer: Option<String>,
    decimals: Option<usize>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs of whitespace as one space: quotes may wrap across lines in a document.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the report of `dir` says (terminal and Markdown), after checking every figure in it is valid.
fn report_text(dir: &Path) -> String {
    let loaded = sharebench::load::load(&[dir.display().to_string()], false).unwrap();
    let report = model::build(&loaded);
    let invalid: Vec<&String> = report.analysis.figures.iter().flat_map(|f| f.invalid.iter()).collect();
    assert!(invalid.is_empty(), "{} is not valid: {invalid:?}", dir.display());
    let severe: Vec<&String> = report.analysis.warnings.iter().filter(|w| w.kind.severe()).map(|w| &w.text).collect();
    assert!(severe.is_empty(), "{} has severe warnings: {severe:?}", dir.display());
    terminal::render(&report) + &markdown::render(&report, &[])
}

/// The capacity answer of the plan in `dir`, each point re-judged from its raw results under `points/`.
fn plan_answer(dir: &Path) -> String {
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap();
    let text = std::fs::read_to_string(dir.join("scenario.toml")).unwrap();
    let scenario = sharebench::scenario::Scenario::parse(&text, "scenario.toml").unwrap();
    let slo_ms = recorded["slo_p99_ms"].as_f64().unwrap();
    let ms = |key: &str| recorded[key].as_f64().map(|v| (v * 1e6) as u64);
    let slo = capacity::Slo {
        p99_ns: (slo_ms * 1e6) as u64,
        ttft_p99_ns: ms("slo_ttft_p99_ms"),
        tpot_p99_ns: ms("slo_tpot_p99_ms"),
    };
    let mut points = Vec::new();
    for p in recorded["points"].as_array().unwrap() {
        let (mode, pods) = (p["mode"].as_str().unwrap(), p["pods"].as_u64().unwrap() as u32);
        // A plan run with --rate names its points by it too (`mps-1-r8`).
        let rate = recorded["rate_override"].as_f64().map(|r| format!("-r{r:.0}")).unwrap_or_default();
        let point_dir = dir.join("points").join(format!("{mode}-{pods}{rate}"));
        let workers = sharebench::load::load(&[point_dir.display().to_string()], false).unwrap().workers;
        let processes = p["processes"].as_u64().unwrap() as u32;
        let mut again = capacity::point(mode, pods, processes, &scenario.slo_group().name, slo, &workers, vec![]);
        again.rate_per_pod = p["rate_per_pod"].as_f64();
        let verdict = serde_json::to_value(again.verdict).unwrap();
        assert_eq!(verdict, p["verdict"], "{mode} {pods} Pods: the raw results give another verdict");
        points.push(again);
    }
    let modes: Vec<String> =
        recorded["capacity"].as_array().unwrap().iter().map(|c| c[0].as_str().unwrap().into()).collect();
    let capacity = modes.iter().map(|m| (m.clone(), capacity::max_pods(&points, m))).collect();
    let plan = PlanReport {
        format: "sharebench-plan".into(),
        scenario,
        slo_p99_ms: slo_ms,
        slo_ttft_p99_ms: recorded["slo_ttft_p99_ms"].as_f64(),
        slo_tpot_p99_ms: recorded["slo_tpot_p99_ms"].as_f64(),
        rate_override: None,
        duration_s: recorded["duration_s"].as_f64().unwrap(),
        gpu: None,
        ran_on: String::new(),
        points,
        capacity,
        max_rate: vec![],
        blast_radius: vec![],
    };
    answer(&plan).join("\n")
}

#[test]
fn every_quoted_figure_comes_from_a_valid_committed_result() {
    let claims: Claims = toml::from_str(&std::fs::read_to_string(root().join("results/claims.toml")).unwrap()).unwrap();
    assert!(claims.claim.len() >= 10, "the README's figures are listed");
    let mut derived: std::collections::BTreeMap<String, String> = Default::default();
    for c in &claims.claim {
        let document = flat(&std::fs::read_to_string(root().join(&c.file)).unwrap());
        let quote = flat(&c.quote);
        assert!(document.contains(&quote), "{} does not quote «{quote}»", c.file);
        let (source, says) = match (&c.report, &c.plan, &c.json) {
            (Some(dir), None, None) => {
                (dir, derived.entry(dir.clone()).or_insert_with(|| flat(&report_text(&root().join(dir)))).clone())
            }
            (None, Some(dir), None) => {
                (dir, derived.entry(dir.clone()).or_insert_with(|| flat(&plan_answer(&root().join(dir)))).clone())
            }
            (None, None, Some(file)) => {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
                let pointer = c.pointer.as_deref().expect("a json claim names a pointer");
                let number = v.pointer(pointer).and_then(|x| x.as_f64()).unwrap_or_else(|| panic!("{file}{pointer}"));
                (file, format!("{:.*}", c.decimals.unwrap_or(0), number))
            }
            _ => panic!("claim «{quote}» needs exactly one of report, plan, json"),
        };
        let figure = if c.json.is_some() { quote.split(' ').next().unwrap().to_string() } else { quote.clone() };
        assert!(says.contains(&figure), "«{quote}» ({}) is not what {source} gives:\n{says}", c.file);
    }
}

#[test]
fn the_readmes_quote_no_run_as_measured_that_the_claims_do_not_list() {
    // Every results directory a README links as the source of figures is a source of some claim.
    let claims: Claims = toml::from_str(&std::fs::read_to_string(root().join("results/claims.toml")).unwrap()).unwrap();
    let sources: Vec<String> =
        claims.claim.iter().flat_map(|c| [c.report.clone(), c.plan.clone(), c.json.clone()]).flatten().collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    for dir in ["results/h200/repeats/compare-default", "results/h200/repeats/reference-16"] {
        assert!(readme.contains(dir), "README links {dir}");
        assert!(sources.iter().any(|s| s.starts_with(dir)), "{dir} backs a claim");
    }
}
