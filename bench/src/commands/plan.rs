//! `sharebench plan`: capacity planning. For each mode, run a scenario at a rising number of Pods (worker
//! processes on this GPU, as a Job's Pods would be) and find the most Pods whose SLO group keeps its p99 within
//! the SLO; write a capacity table and charts.
//!
//! Each point is one group of `sharebench run` workers (see `orchestrate`) meeting at a barrier and measuring
//! for the same duration; its results are kept under `points/<mode>-<pods>/`. The search for a mode stops at
//! the first point that does not meet the SLO.

use super::compare::{prepare_run_dir, start_private_daemon};
use crate::analysis::capacity::{self, Point, Verdict};
use crate::cli::{CompareMode, PlanArgs, Search};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::orchestrate::{self, Runner, WorkerSpec};
use crate::report::charts::{self, SweepChart};
use crate::report::input::Worker;
use crate::report::plan::{markdown, render, PlanReport};
use crate::scenario::Scenario;
use crate::units::format_ns;
use crate::{gpu, host, report};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

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

/// What every point of one plan shares.
struct PointContext<'a> {
    args: &'a PlanArgs,
    scenario: &'a Scenario,
    exe: PathBuf,
    dir: PathBuf,
    slo_ns: u64,
}

impl PointContext<'_> {
    fn point_dir(&self, setting: Setting, load: Load) -> PathBuf {
        self.dir.join("points").join(format!("{}-{}", setting.slug(), load.slug()))
    }

    /// Runs one point and judges it; also returns the workers' results it was judged on.
    fn run_point(&self, setting: Setting, load: Load, pipe_dir: &Path) -> Result<(Point, Vec<Worker>)> {
        let Load { pods, rate, fault } = load;
        let point_dir = self.point_dir(setting, load);
        std::fs::create_dir_all(&point_dir).map_err(|e| Error::io("create directory", &point_dir, e))?;
        let runner = Runner {
            exe: self.exe.clone(),
            logs: point_dir.clone(),
            barrier_timeout: self.args.barrier_timeout,
            live: std::io::stderr().is_terminal(),
        };
        let specs = worker_specs(self.args, self.scenario, setting, load, &point_dir, pipe_dir);
        let at_rate = rate.map(|r| format!(" at {r:.0} req/s each")).unwrap_or_default();
        let title = format!("{} {pods} pods{at_rate}{}", setting.label(), if fault { " with a GPU fault" } else { "" });
        let outcome = runner.run_group(&title, &specs)?;
        let dir = point_dir.display().to_string();
        let workers = report::input::load(&[dir], true).map(|l| l.workers).unwrap_or_default();
        let processes = self.scenario.processes_at(pods);
        let slo_group = &self.scenario.slo_group().name;
        let mut p =
            capacity::point(&setting.label(), pods, processes, slo_group, self.slo_ns, &workers, outcome.failures);
        p.rate_per_pod = swept_rate(self.scenario, rate);
        eprintln!(
            "  {title}: p99 {} over {} samples: {:?}",
            format_ns(p.slo_latency.p99_ns as f64),
            p.slo_latency.samples,
            p.verdict
        );
        Ok((p, workers))
    }
}

/// The GPU a point's workers ran on, as the plan names it.
fn gpu_of(workers: &[Worker]) -> Option<String> {
    workers.first().map(|w| format!("{} ({})", w.gpu.name, w.gpu.uuid))
}

/// How long a point runs: `--duration`, stretched (up to 60 s) so that an open-loop SLO group collects enough
/// samples for its p99 at the expected rate.
pub fn point_duration(args: &PlanArgs, scenario: &Scenario, load: Load) -> std::time::Duration {
    let (group, pods) = (scenario.slo_group(), load.pods);
    let rate = if group.swept() { load.rate.or(group.rate) } else { group.rate };
    let requests_per_s = match (group.arrivals, rate) {
        (crate::scenario::ArrivalKind::Closed, _) | (_, None) => return args.duration,
        (_, Some(r)) => r * group.pods_at(pods) as f64,
    };
    let needed = 1.2 * capacity::MIN_SAMPLES_P99 as f64 / requests_per_s;
    args.duration.max(std::time::Duration::from_secs_f64(needed.min(60.0)))
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

/// Requests after which the injected fault fires (early in a point, so that everyone is running).
const FAULT_AFTER: u64 = 200;

fn worker_specs(
    args: &PlanArgs,
    scenario: &Scenario,
    setting: Setting,
    load: Load,
    dir: &Path,
    pipe_dir: &Path,
) -> Vec<WorkerSpec> {
    let (mode, pods, inject_fault) = (setting.mode, load.pods, load.fault);
    let slo_group = scenario.slo_group().name.clone();
    let single_group = scenario.groups.len() == 1;
    let processes = scenario.processes_at(pods);
    let fault_worker = processes.saturating_sub(1);
    let run_id = format!("plan-{}-{}-{}", scenario.name, setting.slug(), load.slug());
    let mut index = 0;
    let mut specs = Vec::new();
    for group in &scenario.groups {
        for _ in 0..group.pods_at(pods) {
            let label = format!("{}-{index}", group.name);
            let mut a = group.run_args(load.rate);
            a.extend(["--mode".into(), mode.label().into(), "--gpu".into(), args.gpu.to_string()]);
            a.extend(["--workers".into(), processes.to_string(), "--worker-index".into(), index.to_string()]);
            a.extend(["--run-id".into(), run_id.clone(), "--group".into(), group.name.clone()]);
            a.extend(["--duration".into(), format!("{}ms", point_duration(args, scenario, load).as_millis())]);
            a.extend(["--mps-timeout".into(), format!("{}ms", args.control.mps_timeout.as_millis())]);
            if let Some(p) = &args.control.mps_control {
                a.extend(["--mps-control".into(), p.display().to_string()]);
            }
            a.extend(["--out".into(), dir.join(format!("{label}.json")).display().to_string()]);
            if inject_fault && index == fault_worker {
                a.extend(["--inject-fault-after".into(), FAULT_AFTER.to_string()]);
            }
            let mut env = vec![("CUDA_MPS_PIPE_DIRECTORY".to_string(), pipe_dir.as_os_str().to_owned())];
            let neighbour = single_group || group.name != slo_group;
            let atp = if neighbour {
                setting.neighbour_atp.or(group.active_thread_percentage)
            } else {
                group.active_thread_percentage
            };
            if let (CompareMode::Mps, Some(pct)) = (mode, atp) {
                env.push(("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE".into(), pct.to_string().into()));
            }
            specs.push(WorkerSpec { label, args: a, env });
            index += 1;
        }
    }
    specs
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
    Ok(())
}

pub fn execute(args: &PlanArgs) -> Result<i32> {
    validate(args)?;
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| Error::io("read", &args.scenario, e))?;
    let scenario = Scenario::parse(&text, &args.scenario.display().to_string())?;
    gpu::ensure_driver()?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("sharebench-plan-{}", host::unix_now_ns() / 1_000_000_000)));
    prepare_run_dir(&dir, args.force)?;
    let exe = std::env::current_exe().map_err(|e| Error::new(format!("cannot find the sharebench executable: {e}")))?;
    let no_mps = std::env::temp_dir().join(format!("sharebench-{}-no-mps", std::process::id()));
    std::fs::create_dir_all(&no_mps).map_err(|e| Error::io("create directory", &no_mps, e))?;
    orchestrate::install_interrupt_handler();
    let mut daemon =
        if args.modes.contains(&CompareMode::Mps) { Some(start_private_daemon(&args.control, "plan")?) } else { None };
    let slo_ns = (args.slo_p99 * 1e6) as u64;
    let mut points = Vec::new();
    let mut gpu_name = None;
    let ctx = PointContext { args, scenario: &scenario, exe, dir: dir.clone(), slo_ns };
    let mut blast = Vec::new();
    let mut max_rates = Vec::new();
    let start_rate = match args.search {
        Search::Rate => swept_rate(&scenario, args.rate).ok_or_else(|| {
            Error::flag("--search", "rate search needs an open-loop swept group with a rate (or --rate)")
        })?,
        Search::Pods => 0.0,
    };
    for setting in settings(args) {
        let pipe_dir = match (setting.mode, &daemon) {
            (CompareMode::Mps, Some(d)) => d.pipe_dir().to_path_buf(),
            _ => no_mps.clone(),
        };
        match args.search {
            Search::Pods => {
                for pods in capacity::pod_counts(args.max_pods) {
                    let processes = scenario.processes_at(pods);
                    if orchestrate::interrupted() || (setting.mode == CompareMode::Mps && processes > MPS_CLIENT_LIMIT)
                    {
                        break;
                    }
                    let (p, workers) =
                        ctx.run_point(setting, Load { pods, rate: args.rate, fault: false }, &pipe_dir)?;
                    gpu_name = gpu_name.or_else(|| gpu_of(&workers));
                    // Larger counts only add load: stop at the first point that breaks the SLO or fails. A point
                    // with too few samples says nothing either way, so the search goes on.
                    let stop = matches!(p.verdict, Verdict::Violates | Verdict::Failed);
                    points.push(p);
                    if stop {
                        break;
                    }
                }
            }
            Search::Rate => {
                let mut search = capacity::RateSearch::new(start_rate);
                while let Some(rate) = search.next_rate() {
                    if orchestrate::interrupted() {
                        break;
                    }
                    let (p, workers) =
                        ctx.run_point(setting, Load { pods: args.pods, rate: Some(rate), fault: false }, &pipe_dir)?;
                    gpu_name = gpu_name.or_else(|| gpu_of(&workers));
                    search.record(rate, p.verdict);
                    points.push(p);
                }
                max_rates.push((setting.label(), search.answer()));
            }
        }
        if args.inject_fault && !orchestrate::interrupted() {
            let pods = match args.search {
                Search::Pods => capacity::max_pods(&points, &setting.label()).unwrap_or(1).max(2),
                Search::Rate => args.pods.max(2),
            };
            let load = Load { pods, rate: args.rate, fault: true };
            let (p, workers) = ctx.run_point(setting, load, &pipe_dir)?;
            blast.push(capacity::blast_radius(&p, &workers));
        }
    }
    if let Some(mut d) = daemon.take() {
        d.copy_logs(&dir.join("logs"));
        d.stop()?;
    }
    let _ = std::fs::remove_dir_all(&no_mps);
    let capacity_by_mode = match args.search {
        Search::Pods => capacity_by_setting(&settings(args), &points),
        Search::Rate => Vec::new(),
    };
    let plan = PlanReport {
        format: "sharebench-plan",
        scenario,
        slo_p99_ms: args.slo_p99,
        rate_override: args.rate,
        duration_s: args.duration.as_secs_f64(),
        gpu: gpu_name,
        points,
        capacity: capacity_by_mode,
        max_rate: max_rates.into_iter().map(|(s, r)| (s, args.pods, r)).collect(),
        blast_radius: blast,
    };
    let chart_series = settings(args)
        .iter()
        .map(|m| {
            let pts = plan
                .points
                .iter()
                .filter(|p| p.mode == m.label())
                .map(|p| {
                    let x = match args.search {
                        Search::Pods => p.pods,
                        Search::Rate => p.rate_per_pod.unwrap_or(0.0).round() as u32,
                    };
                    (x, p.slo_group_throughput, p.slo_latency.p99_ns as f64 / 1e6)
                })
                .collect::<Vec<_>>();
            let mut pts = pts;
            pts.sort_by_key(|p| p.0);
            (m.label().to_string(), pts)
        })
        .collect();
    let x_label = match args.search {
        Search::Pods => "Pods per GPU",
        Search::Rate => "requests/s per Pod",
    };
    let title =
        format!("{}: SLO group throughput and p99 against {x_label} (SLO {} ms)", plan.scenario.name, plan.slo_p99_ms);
    let chart = SweepChart { title: title.clone(), series: chart_series, x_label, slo_ms: Some(plan.slo_p99_ms) };
    let (svg, png) = charts::save(&chart, &dir, "capacity", Overwrite::Allow)?;
    let json = serde_json::to_string_pretty(&plan).map_err(|e| Error::new(e.to_string()))?;
    fsio::write_atomic(&dir.join("plan.json"), json.as_bytes(), Overwrite::Allow)?;
    fsio::write_atomic(&dir.join("plan.md"), markdown(&plan, &[(title, png)]).as_bytes(), Overwrite::Allow)?;
    fsio::write_atomic(&dir.join("plan.csv"), report::plan::csv(&plan).as_bytes(), Overwrite::Allow)?;
    let chart_svg = std::fs::read_to_string(dir.join(&svg)).unwrap_or_default();
    fsio::write_atomic(&dir.join("plan.html"), report::plan::html(&plan, &chart_svg).as_bytes(), Overwrite::Allow)?;
    let text = render(&plan);
    fsio::write_atomic(&dir.join("plan.txt"), text.as_bytes(), Overwrite::Allow)?;
    print!("{text}");
    let failed = plan.points.iter().any(|p| p.verdict == Verdict::Failed) || orchestrate::interrupted();
    Ok(if failed { exit::INCOMPLETE } else { exit::OK })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn plan_args(extra: &[&str]) -> PlanArgs {
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
    }

    #[test]
    fn each_pod_is_a_worker_of_its_group_with_the_mode_set_up() {
        let s = inference();
        let setting = Setting { mode: CompareMode::Mps, neighbour_atp: Some(30) };
        let load = Load { pods: 3, rate: Some(250.0), fault: true };
        let specs = worker_specs(&plan_args(&[]), &s, setting, load, Path::new("/o"), Path::new("/p"));
        assert_eq!(specs.len(), 3);
        let a = &specs[2].args;
        let value = |flag: &str| a[a.iter().position(|x| x == flag).unwrap() + 1].clone();
        assert_eq!(
            (value("--mode"), value("--workers"), value("--worker-index"), value("--group")),
            ("mps".into(), "3".into(), "2".into(), "inference".into())
        );
        assert_eq!(value("--rate"), "250");
        assert_eq!(specs[0].env[0].1, "/p");
        // A single-group scenario's Pods are each other's neighbours; the last worker carries the fault.
        assert_eq!(specs[0].env[1], ("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE".to_string(), "30".into()));
        assert!(a.contains(&"--inject-fault-after".to_string()));
        assert!(!specs[0].args.contains(&"--inject-fault-after".to_string()));
        let labels: Vec<String> = settings(&plan_args(&["--atp", "25,50"])).iter().map(Setting::label).collect();
        assert_eq!(labels, ["timeslice", "mps (neighbours 25% SMs)", "mps (neighbours 50% SMs)"]);
    }

    #[test]
    fn capacity_is_reported_per_setting() {
        let point = |mode: &str, pods, verdict| Point {
            mode: mode.into(),
            pods,
            processes: pods,
            slo_latency: Default::default(),
            slo_group_throughput: 0.0,
            total_throughput: 0.0,
            rate_per_pod: None,
            verdict,
            failures: vec![],
        };
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
