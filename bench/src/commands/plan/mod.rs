//! `sharebench plan`: capacity planning. For each mode, run a scenario at a rising number of Pods and find the
//! most Pods whose SLO group keeps its p99 within the SLO (or, with `--search rate`, the highest rate per Pod);
//! write a capacity table and charts.
//!
//! Each point is one group of `sharebench run --scenario` workers meeting at a barrier and measuring for the
//! same duration: local worker processes on this GPU (`local`), or the Pods of one Indexed Job per point
//! (`kubernetes`). Either way the point's results land under `points/<setting>-<load>/` and are judged the same
//! way. The search for a mode stops at the first point that does not meet the SLO.

mod kubernetes;
mod local;

use super::compare::prepare_run_dir;
use crate::analysis::capacity::{self, Point, Verdict};
use crate::cli::{CompareMode, PlanArgs, Search};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::kubernetes::overlay::label_value;
use crate::load::Worker;
use crate::orchestrate;
use crate::report::charts::{self, SweepChart};
use crate::report::plan::{markdown, render, PlanReport};
use crate::scenario::Scenario;
use crate::units::format_ns;
use crate::{host, report};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// MPS serves at most this many clients per GPU.
const MPS_CLIENT_LIMIT: u32 = 48;

/// What one point offers: Pods (of the swept groups), their request rate, and whether a fault is injected.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    pub pods: u32,
    /// Requests per second per Pod of the swept groups (`None`: the scenario's).
    pub rate: Option<f64>,
    pub fault: bool,
}

impl Load {
    fn slug(&self) -> String {
        let rate = self.rate.map(|r| format!("-r{r:.0}")).unwrap_or_default();
        format!("{}{rate}{}", self.pods, if self.fault { "-fault" } else { "" })
    }
}

/// One repeat of one point to run: the setting and load, where its results go, and what its workers share.
pub struct PointRun {
    pub setting: Setting,
    pub load: Load,
    /// Which repeat of the point (0-based).
    pub repeat: u32,
    /// Where this repeat's results go: the point's directory, or with several repeats `r<N>/` under it.
    pub dir: PathBuf,
    pub run_id: String,
    pub title: String,
    pub duration: Duration,
    pub processes: u32,
}

/// Where the points of a plan run: local worker processes, or a Kubernetes Job per point.
pub trait Points {
    /// Runs the workers of one point, leaving their results under `point.dir`; returns what failed.
    fn run(&mut self, point: &PointRun) -> Result<Vec<String>>;
    /// Ends the plan (stops what the runner started); `dir` is the plan's output directory.
    fn finish(&mut self, dir: &Path) -> Result<()>;
    /// Where the plan ran, as the plan's outputs describe it.
    fn describe(&self) -> String;
}

/// The `sharebench run` flags every worker of a point gets, wherever it runs: it finds its group in the
/// scenario by its index.
pub fn worker_flags(point: &PointRun, scenario_path: &str, tenant: Option<&crate::cli::TenantArgs>) -> Vec<String> {
    let mut a = vec!["--mode".to_string(), point.setting.mode.label().into()];
    a.extend(["--workers".into(), point.processes.to_string(), "--run-id".into(), point.run_id.clone()]);
    a.extend(["--repeat".into(), point.repeat.to_string()]);
    a.extend(["--scenario".into(), scenario_path.into(), "--scenario-pods".into(), point.load.pods.to_string()]);
    a.extend(["--duration".into(), format!("{}ms", point.duration.as_millis())]);
    if let Some(rate) = point.load.rate {
        a.extend(["--rate".into(), rate.to_string()]);
    }
    if let Some(pct) = point.setting.neighbour_atp {
        a.extend(["--neighbour-atp".into(), pct.to_string()]);
    }
    if let Some(tenant) = tenant {
        a.extend(tenant.to_args());
    }
    a
}

/// What every point of one plan shares.
struct Planner<'a> {
    args: &'a PlanArgs,
    scenario: &'a Scenario,
    dir: PathBuf,
    slo: capacity::Slo,
    points: &'a mut dyn Points,
    /// The GPUs the points ran on (on a cluster, each point's Job may land on another).
    gpus: Vec<String>,
    /// This plan's part of every run id.
    invocation: String,
    /// What failed in each point's repeats so far, by the point's directory.
    failures: std::collections::BTreeMap<PathBuf, Vec<String>>,
}

/// The directory of the point of `setting` at `load`, all its repeats under it.
fn point_dir(dir: &Path, setting: Setting, load: Load) -> PathBuf {
    dir.join("points").join(format!("{}-{}", setting.slug(), load.slug()))
}

/// Repeat `repeat` of the point of `setting` at `load`: its directory, run id, title, duration and worker count.
/// The run id carries the plan's `invocation` ([`host::invocation_id`]), so no two plans name a run alike; every
/// repeat of a point shares it.
pub fn point_run(
    args: &PlanArgs,
    scenario: &Scenario,
    dir: &Path,
    invocation: &str,
    (setting, load, repeat): (Setting, Load, u32),
) -> PointRun {
    // A label value holds 63 characters: the scenario's name gives way, the point's own parts never do.
    let name: String = scenario.name.chars().take(16).collect();
    let at_rate = load.rate.map(|r| format!(" at {r:.0} req/s each")).unwrap_or_default();
    let fault = if load.fault { " with a GPU fault" } else { "" };
    let repeats = if load.fault { 1 } else { args.repeat };
    let point = point_dir(dir, setting, load);
    let of_repeats = if repeats > 1 { format!(" (repeat {} of {repeats})", repeat + 1) } else { String::new() };
    PointRun {
        setting,
        load,
        repeat,
        dir: if repeats > 1 { point.join(format!("r{}", repeat + 1)) } else { point },
        run_id: label_value(&format!("plan-{name}-{invocation}-{}-{}", setting.slug(), load.slug())),
        title: format!("{} {} pods{at_rate}{fault}{of_repeats}", setting.label(), load.pods),
        duration: point_duration(args, scenario, load),
        processes: scenario.processes_at(load.pods),
    }
}

impl Planner<'_> {
    /// Runs one repeat of one point, keeping what failed for its judgement.
    fn run_repeat(&mut self, setting: Setting, load: Load, repeat: u32) -> Result<()> {
        let point = point_run(self.args, self.scenario, &self.dir, &self.invocation, (setting, load, repeat));
        std::fs::create_dir_all(&point.dir).map_err(|e| Error::io("create directory", &point.dir, e))?;
        let failures = self.points.run(&point)?;
        let of_repeat = |f: String| if point.title.contains("(repeat") { format!("{}: {f}", point.title) } else { f };
        let all = self.failures.entry(point_dir(&self.dir, setting, load)).or_default();
        all.extend(failures.into_iter().map(of_repeat));
        Ok(())
    }

    /// Judges one point over the repeats that ran; also returns the workers' results it was judged on.
    fn judge_point(&mut self, setting: Setting, load: Load) -> (Point, Vec<Worker>) {
        let point = point_run(self.args, self.scenario, &self.dir, &self.invocation, (setting, load, 0));
        let dir = point_dir(&self.dir, setting, load);
        let workers: Vec<Worker> = crate::load::load(&[dir.display().to_string()], true)
            .map(|l| l.workers)
            .unwrap_or_default()
            .into_iter()
            .filter(|w| w.run_id == point.run_id)
            .collect();
        let failures = self.failures.remove(&dir).unwrap_or_default();
        let slo_group = &self.scenario.slo_group().name;
        let mut p =
            capacity::point(&setting.label(), load.pods, point.processes, slo_group, self.slo, &workers, failures);
        p.rate_per_pod = swept_rate(self.scenario, load.rate);
        for gpu in workers.iter().map(|w| format!("{} ({})", w.gpu.name, w.gpu.uuid)) {
            if !self.gpus.contains(&gpu) {
                self.gpus.push(gpu);
            }
        }
        let upper = p.p99_upper_ns.map(|u| format!(", upper bound {}", format_ns(u))).unwrap_or_default();
        eprintln!(
            "  {} {} pods: p99 {} over {} samples ({} of {} repeats within the SLO{upper}): {:?}",
            setting.label(),
            load.pods,
            format_ns(p.slo_latency.p99_ns as f64),
            p.slo_latency.samples,
            p.repeats_within,
            p.repeats.len(),
            p.verdict
        );
        (p, workers)
    }

    /// Runs every repeat of one point, then judges it.
    fn run_point(&mut self, setting: Setting, load: Load) -> Result<(Point, Vec<Worker>)> {
        let repeats = if load.fault { 1 } else { self.args.repeat };
        for repeat in 0..repeats {
            if orchestrate::interrupted() {
                break;
            }
            self.run_repeat(setting, load, repeat)?;
        }
        Ok(self.judge_point(setting, load))
    }
}

/// The GPU of the plan, as its outputs name it; points that ran on different GPUs are said to have.
fn describe_gpus(gpus: &[String]) -> Option<String> {
    match gpus {
        [] => None,
        [one] => Some(one.clone()),
        several => Some(format!("points ran on {} different GPUs: {}", several.len(), several.join(", "))),
    }
}

/// How long a point runs: `--duration`, stretched (up to `--max-point-duration`) so that an open-loop SLO group
/// collects enough samples for its p99 at the expected rate.
pub fn point_duration(args: &PlanArgs, scenario: &Scenario, load: Load) -> std::time::Duration {
    let (group, pods) = (scenario.slo_group(), load.pods);
    let rate = if group.swept() { load.rate.or(group.rate) } else { group.rate };
    let requests_per_s = match (group.arrivals, rate) {
        (crate::scenario::ArrivalKind::Closed, _) | (_, None) => return args.duration,
        (_, Some(r)) => r * group.pods_at(pods) as f64,
    };
    let needed = 1.2 * capacity::MIN_SAMPLES_P99 as f64 / requests_per_s;
    let cap = args.max_point_duration.as_secs_f64().max(args.duration.as_secs_f64());
    args.duration.max(std::time::Duration::from_secs_f64(needed.min(cap)))
}

/// The offered rate per Pod of the swept groups at a point.
fn swept_rate(scenario: &Scenario, rate: Option<f64>) -> Option<f64> {
    rate.or_else(|| scenario.groups.iter().find(|g| g.swept()).and_then(|g| g.rate))
}

/// A way of sharing the plan searches: a mode, and under MPS optionally an active thread percentage imposed on
/// the neighbours of the SLO group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub mode: CompareMode,
    pub neighbour_atp: Option<u32>,
}

impl Setting {
    pub fn label(&self) -> String {
        match self.neighbour_atp {
            Some(pct) => format!("{} (neighbours {pct}% SMs)", self.mode.label()),
            None => self.mode.label().to_string(),
        }
    }

    fn slug(&self) -> String {
        match self.neighbour_atp {
            Some(pct) => format!("{}-atp{pct}", self.mode.label()),
            None => self.mode.label().to_string(),
        }
    }
}

/// The settings to search: each mode, and for MPS one per `--atp` value when given.
pub fn settings(args: &PlanArgs) -> Vec<Setting> {
    args.modes
        .iter()
        .flat_map(|&mode| match (mode, args.atp.is_empty()) {
            (CompareMode::Mps, false) => args.atp.iter().map(|&p| Setting { mode, neighbour_atp: Some(p) }).collect(),
            _ => vec![Setting { mode, neighbour_atp: None }],
        })
        .collect()
}

/// The most Pods per GPU of each setting.
pub fn capacity_by_setting(settings: &[Setting], points: &[Point]) -> Vec<(String, Option<u32>)> {
    settings.iter().map(|s| (s.label(), capacity::max_pods(points, &s.label()))).collect()
}

fn validate(args: &PlanArgs) -> Result<()> {
    if !(args.slo_p99.is_finite() && args.slo_p99 > 0.0) {
        return Err(Error::flag("--slo-p99", format!("{} must be a positive number of milliseconds", args.slo_p99)));
    }
    if args.max_pods == 0 || args.max_pods > MPS_CLIENT_LIMIT {
        return Err(Error::flag("--max-pods", format!("{} is not in 1..=48", args.max_pods)));
    }
    if args.modes.is_empty() || args.modes.contains(&CompareMode::Streams) {
        return Err(Error::flag("--modes", "name timeslice, mps or both (plan runs Pods as separate processes)"));
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(Error::flag("--rate", "must be a positive number of requests per second"));
    }
    if let Some(bad) = args.atp.iter().find(|&&p| !(1..=100).contains(&p)) {
        return Err(Error::flag("--atp", format!("{bad} is not a percentage in 1..=100")));
    }
    if args.duration.is_zero() {
        return Err(Error::flag("--duration", "must be longer than 0"));
    }
    if args.kubernetes.dry_run && args.kubernetes.overlays.is_empty() {
        return Err(Error::flag("--dry-run", "writes the points' Kubernetes overlays: add --kubernetes MODE=OVERLAY"));
    }
    if args.kubernetes.overlays.is_empty() {
        Ok(())
    } else {
        kubernetes::validate(args)
    }
}

/// The scenario's copy in the plan directory: what every worker reads, and the plan's record of it.
const SCENARIO_COPY: &str = "scenario.toml";

pub fn execute(args: &PlanArgs) -> Result<i32> {
    validate(args)?;
    // A directory named for the user (no --out) that a failure left with nothing measured in it goes again:
    // the next try must not find a stray, non-empty `sharebench-plan-...` in its way.
    let default_dir = args.out.is_none().then(|| PathBuf::from(format!("sharebench-plan-{}", host::invocation_id())));
    let outcome = plan_in(args, args.out.clone().or_else(|| default_dir.clone()).expect("a directory"));
    if let (Err(_), Some(dir)) = (&outcome, &default_dir) {
        if super::compare::holds_nothing_measured(dir, &[SCENARIO_COPY]) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    outcome
}

fn plan_in(args: &PlanArgs, dir: PathBuf) -> Result<i32> {
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| Error::io("read", &args.scenario, e))?;
    let scenario = Scenario::parse(&text, &args.scenario.display().to_string())?;
    let start_rate = match args.search {
        Search::Rate => Some(swept_rate(&scenario, args.rate).ok_or_else(|| {
            Error::flag("--search", "rate search needs an open-loop swept group with a rate (or --rate)")
        })?),
        Search::Pods => None,
    };
    prepare_run_dir(&dir, args.force)?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| Error::io("resolve", &dir, e))?;
    let scenario_copy = dir.join(SCENARIO_COPY);
    fsio::write_atomic(&scenario_copy, text.as_bytes(), Overwrite::Allow)?;
    if args.kubernetes.dry_run {
        return kubernetes::write_all_points(args, &scenario, &dir, &text);
    }
    orchestrate::install_interrupt_handler();
    let mut points: Box<dyn Points> = if args.kubernetes.overlays.is_empty() {
        Box::new(local::LocalPoints::start(args, &scenario, &scenario_copy)?)
    } else {
        Box::new(kubernetes::KubernetesPoints::new(args, &text)?)
    };
    let ms = |v: f64| (v * 1e6) as u64;
    let slo = capacity::Slo {
        p99_ns: ms(args.slo_p99),
        ttft_p99_ns: args.slo_ttft_p99.or(scenario.slo_ttft_p99_ms).map(ms),
        tpot_p99_ns: args.slo_tpot_p99.or(scenario.slo_tpot_p99_ms).map(ms),
    };
    let mut planner = Planner {
        args,
        scenario: &scenario,
        dir: dir.clone(),
        slo,
        points: points.as_mut(),
        gpus: vec![],
        invocation: crate::host::invocation_id(),
        failures: Default::default(),
    };
    let searched = search(&mut planner, start_rate);
    let gpu = describe_gpus(&planner.gpus);
    let finished = points.finish(&dir);
    let Searched { points: found, max_rates, blast } = searched?;
    finished?;
    let capacity_by_mode = match args.search {
        Search::Pods => capacity_by_setting(&settings(args), &found),
        Search::Rate => Vec::new(),
    };
    let plan = PlanReport {
        format: "sharebench-plan".into(),
        scenario,
        slo_p99_ms: args.slo_p99,
        slo_ttft_p99_ms: slo.ttft_p99_ns.map(|n| n as f64 / 1e6),
        slo_tpot_p99_ms: slo.tpot_p99_ns.map(|n| n as f64 / 1e6),
        rate_override: args.rate,
        duration_s: args.duration.as_secs_f64(),
        gpu,
        ran_on: points.describe(),
        points: found,
        capacity: capacity_by_mode,
        max_rate: max_rates.into_iter().map(|(s, r)| (s, args.pods, r)).collect(),
        blast_radius: blast,
    };
    write_outputs(args, &plan, &dir)?;
    let failed = plan.points.iter().any(|p| p.verdict == Verdict::Failed) || orchestrate::interrupted();
    Ok(if failed { exit::INCOMPLETE } else { exit::OK })
}

/// What a search found.
struct Searched {
    points: Vec<Point>,
    max_rates: Vec<(String, Option<f64>)>,
    blast: Vec<capacity::BlastRadius>,
}

/// Runs the search of every setting: Pod counts up to the first point that breaks the SLO (the settings
/// interleaved: at each Pod count, repeat 1 of every setting, then repeat 2, ..., so drift hits them alike), or
/// the rate search (each point's repeats in a row); then, with `--inject-fault`, one point with a GPU fault.
fn search(planner: &mut Planner, start_rate: Option<f64>) -> Result<Searched> {
    let args = planner.args;
    let mut found = Searched { points: Vec::new(), max_rates: Vec::new(), blast: Vec::new() };
    match start_rate {
        None => {
            let mut searching = settings(args);
            for pods in capacity::pod_counts(args.max_pods) {
                let processes = planner.scenario.processes_at(pods);
                searching.retain(|s| !(s.mode == CompareMode::Mps && processes > MPS_CLIENT_LIMIT));
                if orchestrate::interrupted() || searching.is_empty() {
                    break;
                }
                let load = Load { pods, rate: args.rate, fault: false };
                for repeat in 0..args.repeat {
                    for &setting in &searching {
                        if !orchestrate::interrupted() {
                            planner.run_repeat(setting, load, repeat)?;
                        }
                    }
                }
                let mut still = Vec::new();
                for &setting in &searching {
                    let (p, _) = planner.judge_point(setting, load);
                    // Larger counts only add load: stop at the first point that breaks the SLO or fails. A point
                    // with too few samples says nothing either way, so the search goes on.
                    if !matches!(p.verdict, Verdict::Violates | Verdict::Failed) {
                        still.push(setting);
                    }
                    found.points.push(p);
                }
                searching = still;
            }
        }
        Some(start) => {
            for setting in settings(args) {
                let mut search = capacity::RateSearch::new(start);
                while let Some(rate) = search.next_rate() {
                    if orchestrate::interrupted() {
                        break;
                    }
                    let (p, _) =
                        planner.run_point(setting, Load { pods: args.pods, rate: Some(rate), fault: false })?;
                    search.record(rate, p.verdict);
                    found.points.push(p);
                }
                found.max_rates.push((setting.label(), search.answer()));
            }
        }
    }
    if args.inject_fault {
        for setting in settings(args) {
            if orchestrate::interrupted() {
                break;
            }
            let pods = match args.search {
                Search::Pods => capacity::max_pods(&found.points, &setting.label()).unwrap_or(1).max(2),
                Search::Rate => args.pods.max(2),
            };
            let (p, workers) = planner.run_point(setting, Load { pods, rate: args.rate, fault: true })?;
            found.blast.push(capacity::blast_radius(&p, &workers));
        }
    }
    Ok(found)
}

/// plan.txt/md/json/csv/html and the capacity chart; prints the table.
fn write_outputs(args: &PlanArgs, plan: &PlanReport, dir: &Path) -> Result<()> {
    let labels: Vec<String> = settings(args).iter().map(|m| m.label()).collect();
    let json = serde_json::to_string_pretty(plan).map_err(|e| Error::new(e.to_string()))?;
    fsio::write_atomic(&dir.join("plan.json"), json.as_bytes(), Overwrite::Allow)?;
    write_pages(plan, args.search, &labels, dir)
}

/// `sharebench plan-pages DIR`: the plan's pages again, from its plan.json, as this sharebench writes them.
pub fn rerender(dir: &Path) -> Result<i32> {
    let path = dir.join("plan.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
    let plan: PlanReport = serde_json::from_str(&text).map_err(|e| {
        Error::new(format!("{}: not a plan this sharebench reads: {e}", path.display()))
            .fix("give the directory `sharebench plan` wrote (it holds plan.json)")
    })?;
    if plan.format != "sharebench-plan" {
        return Err(Error::new(format!("{}: format {:?} is not a sharebench plan", path.display(), plan.format)));
    }
    let (search, labels): (Search, Vec<String>) = match plan.max_rate.is_empty() {
        true => (Search::Pods, plan.capacity.iter().map(|(m, _)| m.clone()).collect()),
        false => (Search::Rate, plan.max_rate.iter().map(|(m, _, _)| m.clone()).collect()),
    };
    write_pages(&plan, search, &labels, dir)?;
    Ok(exit::OK)
}

/// The pages of `plan` for its settings (`labels`) into `dir` (plan.txt, .md, .csv, .html and the capacity
/// chart; plan.json is the caller's); prints the table.
fn write_pages(plan: &PlanReport, search: Search, labels: &[String], dir: &Path) -> Result<()> {
    let x_of = |p: &Point| match search {
        Search::Pods => p.pods,
        Search::Rate => p.rate_per_pod.unwrap_or(0.0).round() as u32,
    };
    let series = labels
        .iter()
        .map(|m| {
            let mut pts: Vec<(u32, f64, f64)> = plan
                .points
                .iter()
                .filter(|p| &p.mode == m)
                .map(|p| (x_of(p), p.slo_group_throughput, p.slo_latency.p99_ns as f64 / 1e6))
                .collect();
            pts.sort_by_key(|p| p.0);
            (m.clone(), pts)
        })
        .collect();
    let repeats = labels
        .iter()
        .map(|m| {
            let pts = plan
                .points
                .iter()
                .filter(|p| &p.mode == m)
                .flat_map(|p| {
                    p.repeats.iter().map(move |r| (x_of(p), r.slo_group_throughput, r.latency.p99_ns as f64 / 1e6))
                })
                .collect();
            (m.clone(), pts)
        })
        .collect();
    let x_label = match search {
        Search::Pods => "Pods per GPU",
        Search::Rate => "requests/s per Pod",
    };
    let title =
        format!("{}: SLO group throughput and p99 against {x_label} (SLO {} ms)", plan.scenario.name, plan.slo_p99_ms);
    let chart = SweepChart {
        title: title.clone(),
        series,
        x_label,
        throughput_label: crate::report::table::Unit::Requests.throughput_axis(),
        slo_ms: Some(plan.slo_p99_ms),
        repeats,
    };
    let (svg, _png) = charts::save(&chart, dir, "capacity", Overwrite::Allow)?;
    fsio::write_atomic(&dir.join("plan.md"), markdown(plan, &[(title, svg.clone())]).as_bytes(), Overwrite::Allow)?;
    fsio::write_atomic(&dir.join("plan.csv"), report::plan::csv(plan).as_bytes(), Overwrite::Allow)?;
    let chart_svg = std::fs::read_to_string(dir.join(&svg)).unwrap_or_default();
    fsio::write_atomic(&dir.join("plan.html"), report::plan::html(plan, &chart_svg).as_bytes(), Overwrite::Allow)?;
    let text = render(plan);
    fsio::write_atomic(&dir.join("plan.txt"), text.as_bytes(), Overwrite::Allow)?;
    print!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    /// `sharebench plan s.toml --slo-p99 5` and `extra`, parsed.
    pub(super) fn plan_args(extra: &[&str]) -> PlanArgs {
        let mut argv = vec!["sharebench", "plan", "s.toml", "--slo-p99", "5"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Plan(a) => a,
            _ => unreachable!(),
        }
    }

    fn inference() -> Scenario {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/inference.toml")).unwrap();
        Scenario::parse(&text, "inference.toml").unwrap()
    }

    #[test]
    fn points_last_long_enough_for_a_meaningful_p99() {
        let args = plan_args(&["--duration", "5s"]);
        // 200 requests/s per Pod: one Pod needs 6 s for 1200 samples, four Pods need less than the 5 s given.
        let load = |pods, rate| Load { pods, rate, fault: false };
        assert_eq!(point_duration(&args, &inference(), load(1, None)).as_secs_f64(), 6.0);
        assert_eq!(point_duration(&args, &inference(), load(4, None)).as_secs_f64(), 5.0);
        assert_eq!(point_duration(&args, &inference(), load(1, Some(1.0))).as_secs_f64(), 60.0);
        assert_eq!(point_duration(&args, &inference(), load(1, Some(2000.0))).as_secs_f64(), 5.0);
        let patient = plan_args(&["--duration", "5s", "--max-point-duration", "2m"]);
        assert_eq!(point_duration(&patient, &inference(), load(1, Some(4.0))).as_secs_f64(), 120.0);
        assert_eq!(point_duration(&patient, &inference(), load(1, Some(20.0))).as_secs_f64(), 60.0);
    }

    #[test]
    fn each_pod_is_a_worker_of_the_scenario_with_the_mode_set_up() {
        let s = inference();
        let setting = Setting { mode: CompareMode::Mps, neighbour_atp: Some(30) };
        let load = Load { pods: 3, rate: Some(250.0), fault: true };
        let point = point_run(&plan_args(&[]), &s, Path::new("/o"), "m3x9k2ab", (setting, load, 0));
        assert_eq!(point.run_id, "plan-inference-m3x9k2ab-mps-atp30-3-r250-fault");
        // A fault point runs once; others once per repeat, each repeat in its own folder, one run id for all.
        assert_eq!(point.dir, Path::new("/o/points/mps-atp30-3-r250-fault"));
        let plain = Load { fault: false, ..load };
        let second = point_run(&plan_args(&["--repeat", "3"]), &s, Path::new("/o"), "m3x9k2ab", (setting, plain, 1));
        assert_eq!(second.dir, Path::new("/o/points/mps-atp30-3-r250/r2"));
        assert_eq!(second.run_id, "plan-inference-m3x9k2ab-mps-atp30-3-r250");
        assert!(second.title.ends_with("(repeat 2 of 3)"), "{}", second.title);
        let a = local::worker_specs(&plan_args(&[]), &s, "/o/scenario.toml", &second, Path::new("/p"));
        assert_eq!(a[0].args[a[0].args.iter().position(|x| x == "--repeat").unwrap() + 1], "1");
        let specs = local::worker_specs(&plan_args(&[]), &s, "/o/scenario.toml", &point, Path::new("/p"));
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[2].label, "inference-2-r1");
        let a = &specs[2].args;
        let value = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].clone();
        assert_eq!(
            (value("--mode"), value("--workers"), value("--worker-index"), value("--scenario-pods")),
            ("mps".into(), "3".into(), "2".into(), "3".into())
        );
        assert_eq!((value("--rate"), value("--neighbour-atp")), ("250".into(), "30".into()));
        assert_eq!(value("--scenario"), "/o/scenario.toml");
        assert_eq!(specs[0].env[0].1, "/p");
        // The last worker carries the fault.
        assert!(a.contains(&"--inject-fault-after".to_string()));
        assert!(!specs[0].args.contains(&"--inject-fault-after".to_string()));
        let labels: Vec<String> = settings(&plan_args(&["--atp", "25,50"])).iter().map(Setting::label).collect();
        assert_eq!(labels, ["timeslice", "mps (neighbours 25% SMs)", "mps (neighbours 50% SMs)"]);
    }

    #[test]
    fn capacity_is_reported_per_setting() {
        let point = |mode: &str, pods, verdict| crate::analysis::capacity::tests::at(mode, pods, verdict);
        let all = settings(&plan_args(&["--atp", "25,50"]));
        let points = [
            point("mps (neighbours 25% SMs)", 4, Verdict::Meets),
            point("mps (neighbours 50% SMs)", 1, Verdict::Violates),
        ];
        let c = capacity_by_setting(&all, &points);
        assert_eq!(c[1], ("mps (neighbours 25% SMs)".to_string(), Some(4)));
        assert_eq!(c[2].1, None);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn bad_flags_are_named() {
        assert!(validate(&plan_args(&["--max-pods", "64"])).unwrap_err().problem.contains("--max-pods"));
        assert!(validate(&plan_args(&["--modes", "streams"])).unwrap_err().problem.contains("--modes"));
        let mut a = plan_args(&[]);
        a.slo_p99 = -1.0;
        assert!(validate(&a).unwrap_err().problem.contains("--slo-p99"));
    }
}
