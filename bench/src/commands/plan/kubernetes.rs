//! Plan points as Kubernetes Jobs: each point is the mode's overlay plus a patch (see `kubernetes::overlay`)
//! applied with `kubectl apply -k`; its Pods are the workers, their results come back through `kubectl logs`,
//! and the Job is deleted before the next point, so points never share the GPU.

use super::{point_run, worker_flags, Load, PointRun, Points};
use crate::analysis::capacity;
use crate::cli::{CompareMode, PlanArgs, Search};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::kubernetes::kubectl::Kubectl;
use crate::kubernetes::overlay::{self, PointJob};
use crate::kubernetes::JOB_NAME;
use crate::scenario::Scenario;
use crate::{orchestrate, rendezvous, units};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pods wait at least this long for each other at the barrier: scheduling and image pulls take a while.
const POD_BARRIER_TIMEOUT: Duration = Duration::from_secs(300);

/// How often the Job's status is read.
const POLL: Duration = Duration::from_secs(2);

/// Checks the Kubernetes flags: an overlay for every mode planned, each a kustomization directory.
pub fn validate(args: &PlanArgs) -> Result<()> {
    let overlays = &args.kubernetes.overlays;
    for mode in &args.modes {
        if !overlays.iter().any(|(m, _)| m == mode) {
            return Err(Error::flag(
                "--kubernetes",
                format!("no overlay for mode {0}: add --kubernetes {0}=OVERLAY (see manifests/overlays)", mode.label()),
            ));
        }
    }
    for (i, (mode, dir)) in overlays.iter().enumerate() {
        if overlays[..i].iter().any(|(m, _)| m == mode) {
            return Err(Error::flag("--kubernetes", format!("mode {} is given twice", mode.label())));
        }
        if !["kustomization.yaml", "kustomization.yml", "Kustomization"].iter().any(|f| dir.join(f).is_file()) {
            return Err(Error::flag("--kubernetes", format!("{} is not a kustomize overlay directory", dir.display()))
                .fix("name a directory holding a kustomization.yaml, e.g. manifests/overlays/dra-mps"));
        }
    }
    if args.inject_fault {
        return Err(Error::flag(
            "--inject-fault",
            "runs locally only (the blast radius is the MPS server's, not the cluster's): drop --kubernetes",
        ));
    }
    if args.kubernetes.dry_run && args.search == Search::Rate {
        return Err(Error::flag("--dry-run", "writes the Pod-count points; a rate search picks its rates as it goes"));
    }
    Ok(())
}

/// Writes one point's directory: the scenario, the patch and the kustomization.
fn write_point(point: &PointRun, overlay_dir: &Path, scenario_text: &str, args: &PlanArgs) -> Result<()> {
    let scenario = crate::scenario::Scenario::parse(scenario_text, overlay::SCENARIO_FILE)?;
    let tenant = scenario.has_commands().then_some(&args.tenant);
    let mut worker_args = worker_flags(point, &overlay::scenario_in_pod(), tenant);
    let barrier_timeout = args.barrier_timeout.max(POD_BARRIER_TIMEOUT);
    worker_args.extend(["--barrier-timeout".into(), format!("{}ms", barrier_timeout.as_millis())]);
    worker_args.extend(["--mps-timeout".into(), format!("{}ms", args.control.mps_timeout.as_millis())]);
    let job = PointJob {
        pods: point.processes,
        run_id: point.run_id.clone(),
        worker_args,
        deadline_s: args.kubernetes.point_timeout.as_secs().max(1),
    };
    let patch = serde_json::to_string_pretty(&overlay::patch(&job)).map_err(|e| Error::new(e.to_string()))?;
    let resource = overlay::relative_path(&point.dir, overlay_dir);
    let files = [
        (overlay::SCENARIO_FILE, scenario_text.to_string()),
        (overlay::PATCH_FILE, patch + "\n"),
        ("kustomization.yaml", overlay::kustomization(&resource, &crate::rendezvous::new_token()?)),
    ];
    for (name, text) in files {
        fsio::write_atomic(&point.dir.join(name), text.as_bytes(), Overwrite::Allow)?;
    }
    Ok(())
}

fn canonical_overlays(args: &PlanArgs) -> Result<Vec<(CompareMode, PathBuf)>> {
    args.kubernetes
        .overlays
        .iter()
        .map(|(m, d)| Ok((*m, std::fs::canonicalize(d).map_err(|e| Error::io("resolve", d, e))?)))
        .collect()
}

fn overlay_for(overlays: &[(CompareMode, PathBuf)], mode: CompareMode) -> &Path {
    overlays.iter().find(|(m, _)| *m == mode).map(|(_, d)| d.as_path()).expect("validated: an overlay per mode")
}

/// `--dry-run`: every point's overlay, for every Pod count up to --max-pods, and nothing applied.
pub fn write_all_points(args: &PlanArgs, scenario: &Scenario, dir: &Path, scenario_text: &str) -> Result<i32> {
    let overlays = canonical_overlays(args)?;
    let mut written = Vec::new();
    let invocation = crate::host::invocation_id();
    for setting in super::settings(args) {
        for pods in capacity::pod_counts(args.max_pods) {
            if setting.mode == CompareMode::Mps && scenario.processes_at(pods) > super::MPS_CLIENT_LIMIT {
                break;
            }
            for repeat in 0..args.repeat {
                let load = Load { pods, rate: args.rate, fault: false };
                let point = point_run(args, scenario, dir, &invocation, (setting, load, repeat));
                std::fs::create_dir_all(&point.dir).map_err(|e| Error::io("create directory", &point.dir, e))?;
                write_point(&point, overlay_for(&overlays, setting.mode), scenario_text, args)?;
                written.push(point.dir);
            }
        }
    }
    println!("wrote {} point overlays (nothing applied); run one point with:", written.len());
    if let Some(first) = written.first() {
        println!("  kubectl apply -k {}", first.display());
        println!("  kubectl logs -l job-name={JOB_NAME} --tail=-1 | sharebench report -");
        println!("  kubectl delete -k {}", first.display());
    }
    Ok(exit::OK)
}

pub struct KubernetesPoints {
    args: PlanArgs,
    kubectl: Kubectl,
    overlays: Vec<(CompareMode, PathBuf)>,
    scenario_text: String,
}

impl KubernetesPoints {
    pub fn new(args: &PlanArgs, scenario_text: &str) -> Result<KubernetesPoints> {
        let kubectl =
            Kubectl { program: args.kubernetes.kubectl.clone(), namespace: args.kubernetes.namespace.clone() };
        if kubectl.job_exists()? {
            return Err(Error::new(format!("a Job named {JOB_NAME} already exists; each point creates its own"))
                .fix(format!("delete it (kubectl delete job {JOB_NAME}) or plan in another --namespace")));
        }
        Ok(KubernetesPoints {
            args: args.clone(),
            kubectl,
            overlays: canonical_overlays(args)?,
            scenario_text: scenario_text.to_string(),
        })
    }

    /// Follows the Job until it ends, times out or the plan is interrupted; returns what failed.
    fn wait(&self, point: &PointRun) -> Result<Vec<String>> {
        let started = Instant::now();
        let timeout = self.args.kubernetes.point_timeout;
        loop {
            if orchestrate::interrupted() {
                return Ok(vec!["interrupted".into()]);
            }
            let status = self.kubectl.job_status()?;
            match status.finished {
                Some(true) => return Ok(vec![]),
                Some(false) => {
                    let why = status.reason.unwrap_or_default();
                    return Ok(vec![format!(
                        "the Job failed ({why}); {} of {} Pods failed",
                        status.failed, point.processes
                    )]);
                }
                None => {}
            }
            // The Job's own deadline should end it first; this is the backstop.
            if started.elapsed() > timeout + Duration::from_secs(30) {
                let pods = self.kubectl.pod_problems().unwrap_or_default();
                let detail = if pods.is_empty() { String::new() } else { format!(": {}", pods.join("; ")) };
                let waited = units::format_ns(timeout.as_nanos() as f64);
                return Ok(vec![format!("the Job did not finish within {waited}{detail}")]);
            }
            eprintln!(
                "  [{}] {:.0} s: {} Pods active, {} succeeded, {} failed",
                point.title,
                started.elapsed().as_secs_f64(),
                status.active,
                status.succeeded,
                status.failed
            );
            std::thread::sleep(POLL);
        }
    }

    /// Saves the Pods' logs and the result lines in them; names the Pods that reported nothing.
    fn collect(&self, point: &PointRun) -> Result<Vec<String>> {
        let logs = match self.kubectl.logs(point.processes) {
            Ok(logs) => logs,
            Err(e) => return Ok(vec![format!("cannot read the Pods' logs: {}", e.problem)]),
        };
        fsio::write_atomic(&point.dir.join("pods.log"), logs.as_bytes(), Overwrite::Allow)?;
        let lines: Vec<&str> = crate::load::result_lines(&logs).collect();
        let mut results = lines.join("\n");
        results.push('\n');
        fsio::write_atomic(&point.dir.join("results.jsonl"), results.as_bytes(), Overwrite::Allow)?;
        let (workers, _) = crate::load::parse_log_text(&logs);
        let reported = workers.iter().filter(|w| w.run_id == point.run_id).map(|w| w.config.worker_index);
        let missing = rendezvous::missing_workers(point.processes, reported);
        Ok(if missing.is_empty() {
            vec![]
        } else {
            vec![format!("Pods with completion index {missing} reported no result")]
        })
    }
}

impl Points for KubernetesPoints {
    fn run(&mut self, point: &PointRun) -> Result<Vec<String>> {
        write_point(point, overlay_for(&self.overlays, point.setting.mode), &self.scenario_text, &self.args)?;
        eprintln!("  [{}] kubectl apply -k {}", point.title, point.dir.display());
        self.kubectl.apply(&point.dir)?;
        let waited = self.wait(point);
        let collected = waited.is_ok().then(|| self.collect(point));
        let deleted = self.kubectl.delete(&point.dir);
        let mut failures = waited?;
        if let Some(c) = collected {
            failures.extend(c?);
        }
        deleted?;
        Ok(failures)
    }

    fn finish(&mut self, _dir: &Path) -> Result<()> {
        Ok(())
    }

    fn describe(&self) -> String {
        let overlays: Vec<String> =
            self.args.kubernetes.overlays.iter().map(|(m, d)| format!("{}: {}", m.label(), d.display())).collect();
        let ns = self.args.kubernetes.namespace.as_deref().unwrap_or("the context's");
        format!("Kubernetes Jobs, one per point (overlays {}; namespace {ns})", overlays.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::plan_args;
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn every_mode_needs_an_overlay_directory() {
        let overlays = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/overlays");
        let ts = format!("timeslice={overlays}/dra-timeslicing");
        let mps = format!("mps={overlays}/dra-mps");
        assert!(validate(&plan_args(&["--kubernetes", &ts, "--kubernetes", &mps])).is_ok());
        let e = validate(&plan_args(&["--kubernetes", &ts])).unwrap_err();
        assert!(e.problem.contains("no overlay for mode mps"), "{}", e.problem);
        let e = validate(&plan_args(&["--modes", "mps", "--kubernetes", "mps=/nonexistent"])).unwrap_err();
        assert!(e.problem.contains("not a kustomize overlay"), "{}", e.problem);
        let e = validate(&plan_args(&["--modes", "mps", "--kubernetes", &mps, "--inject-fault"])).unwrap_err();
        assert!(e.problem.contains("--inject-fault"));
        assert!(Cli::try_parse_from(["sharebench", "plan", "s", "--slo-p99", "1", "--kubernetes", "gpu"]).is_err());
        assert!(
            Cli::try_parse_from(["sharebench", "plan", "s", "--slo-p99", "1", "--kubernetes", "streams=x"]).is_err()
        );
    }
}
