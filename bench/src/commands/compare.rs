//! `sharebench compare`: the default job on one GPU machine. Runs the same workload as N worker processes under
//! time-slicing (verified: not MPS clients), under MPS (a private daemon, or `--mps-pipe-dir`; verified: all
//! joined), and as N streams in one process (the ceiling for spatial sharing), for each worker count; then
//! writes the report into the run directory.
//!
//! Workers are child processes running `sharebench run` (see `orchestrate`); they meet at a barrier this process
//! serves on loopback. The private daemon is stopped on every exit path, Ctrl-C included.

use crate::cli::{CompareArgs, CompareMode, MpsControlArgs};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::mps::daemon::PrivateDaemon;
use crate::orchestrate::{self, Runner, WorkerSpec};
use crate::{gpu, host};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One step of the plan: a mode at a worker count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub mode: CompareMode,
    pub workers: u32,
}

/// The phases in order: the solo baseline first (unless asked not to or already in the sweep), then each
/// worker count through each mode.
pub fn plan_phases(counts: &[u32], modes: &[CompareMode], solo: bool) -> Vec<Phase> {
    let mut phases = Vec::new();
    if solo && !counts.contains(&1) {
        phases.push(Phase { mode: CompareMode::Timeslice, workers: 1 });
    }
    for &workers in counts {
        for &mode in modes {
            if !(mode == CompareMode::Streams && workers == 1 && modes.contains(&CompareMode::Timeslice)) {
                phases.push(Phase { mode, workers });
            }
        }
    }
    phases
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    pub mode: String,
    pub workers: u32,
    pub complete: bool,
    pub seconds: f64,
    pub failures: Vec<String>,
}

/// `compare.json`: what was asked, what ran, whether the run directory is complete.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRecord {
    pub run_id: String,
    pub command_line: Vec<String>,
    pub complete: bool,
    pub interrupted: bool,
    pub mps_pipe_dir: Option<String>,
    pub mps_daemon: String,
    pub phases: Vec<PhaseOutcome>,
    pub seconds: f64,
}

struct Context<'a> {
    args: &'a CompareArgs,
    runner: Runner,
    run_id: String,
    results: PathBuf,
    no_mps_dir: PathBuf,
}

impl Context<'_> {
    /// The worker processes of one phase.
    fn specs(&self, phase: Phase, pipe_dir: &Path) -> Vec<WorkerSpec> {
        let processes = if phase.mode == CompareMode::Streams { 1 } else { phase.workers };
        (0..processes)
            .map(|index| {
                let label = format!("w{}-{}-{index}", phase.workers, phase.mode.label());
                let mut args = self.args.workload.to_args();
                args.extend(["--mode".into(), phase.mode.label().into(), "--gpu".into(), self.args.gpu.to_string()]);
                args.extend(["--run-id".into(), self.run_id.clone()]);
                let n = phase.workers.to_string();
                match phase.mode {
                    CompareMode::Streams => args.extend(["--streams".into(), n.clone(), "--workers".into(), n]),
                    _ => args.extend(["--workers".into(), n, "--worker-index".into(), index.to_string()]),
                }
                if let Some(p) = &self.args.control.mps_control {
                    args.extend(["--mps-control".into(), p.display().to_string()]);
                }
                args.extend(["--mps-timeout".into(), format!("{}ms", self.args.control.mps_timeout.as_millis())]);
                args.extend(["--out".into(), self.results.join(format!("{label}.json")).display().to_string()]);
                if self.args.force {
                    args.push("--force".into());
                }
                if self.args.inject_fault && index == 0 && phase.workers > 1 {
                    let half = self.args.workload.kernels.unwrap_or(1) / 2;
                    args.extend(["--inject-fault-after".into(), half.to_string()]);
                }
                WorkerSpec { label, args, env: vec![("CUDA_MPS_PIPE_DIRECTORY".into(), pipe_dir.into())] }
            })
            .collect()
    }

    fn run_phase(&self, phase: Phase, pipe_dir: &Path) -> Result<PhaseOutcome> {
        let title = format!("{} x{}", phase.mode.label(), phase.workers);
        let outcome = self.runner.run_group(&title, &self.specs(phase, pipe_dir))?;
        Ok(PhaseOutcome {
            mode: phase.mode.label().into(),
            workers: phase.workers,
            complete: outcome.complete,
            seconds: outcome.seconds,
            failures: outcome.failures,
        })
    }
}

fn default_run_dir() -> PathBuf {
    let secs = host::unix_now_ns() / 1_000_000_000;
    PathBuf::from(format!("sharebench-compare-{secs}"))
}

/// Starts the private MPS daemon a run uses (its own pipe and log directories under /tmp).
pub fn start_private_daemon(control: &MpsControlArgs, who: &str) -> Result<PrivateDaemon> {
    let program = crate::mps::control::locate(control.mps_control.as_deref()).ok_or_else(|| {
        Error::new("nvidia-cuda-mps-control not found on PATH: cannot start an MPS daemon")
            .fix("install the NVIDIA driver utilities, pass --mps-control PATH, or leave mps out of --modes")
    })?;
    let d = PrivateDaemon::start(&program, Path::new("/tmp"), control.mps_timeout)?;
    eprintln!("sharebench {who}: started a private MPS daemon (pipe directory {})", d.pipe_dir().display());
    Ok(d)
}

/// Makes `dir` the run directory (with results/ and logs/), refusing a non-empty one without `force`.
pub fn prepare_run_dir(dir: &Path, force: bool) -> Result<()> {
    let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !force {
        return Err(Error::new(format!("run directory {} is not empty", dir.display()))
            .fix("choose another --out, or pass --force to replace its results"));
    }
    for sub in ["results", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io("create directory", &dir.join(sub), e))?;
    }
    Ok(())
}

pub fn execute(args: &CompareArgs) -> Result<i32> {
    super::run::plan(&args.workload)?;
    super::run::shape(&args.workload, 1)?;
    if args.modes.is_empty() {
        return Err(Error::flag("--modes", "name at least one of timeslice, mps, streams"));
    }
    gpu::ensure_driver()?;
    let started = Instant::now();
    let dir = args.out.clone().unwrap_or_else(default_run_dir);
    prepare_run_dir(&dir, args.force)?;
    let exe = std::env::current_exe().map_err(|e| Error::new(format!("cannot find the sharebench executable: {e}")))?;
    let scratch = std::env::temp_dir().join(format!("sharebench-{}", std::process::id()));
    let no_mps_dir = scratch.join("no-mps");
    std::fs::create_dir_all(&no_mps_dir).map_err(|e| Error::io("create directory", &no_mps_dir, e))?;
    orchestrate::install_interrupt_handler();
    let ctx = Context {
        args,
        runner: Runner {
            exe,
            logs: dir.join("logs"),
            barrier_timeout: args.barrier_timeout,
            live: std::io::stderr().is_terminal(),
        },
        run_id: format!("compare-{}", host::unix_now_ns() / 1_000_000_000),
        results: dir.join("results"),
        no_mps_dir,
    };
    let phases = plan_phases(&args.workers.0, &args.modes, !args.no_solo);
    eprintln!("sharebench compare: {} phases, run directory {}", phases.len(), dir.display());
    let needs_mps = phases.iter().any(|p| p.mode == CompareMode::Mps);
    let mut daemon = None;
    let (mps_pipe_dir, mps_daemon) = match (&args.mps_pipe_dir, needs_mps) {
        (Some(p), _) => (Some(p.clone()), format!("existing daemon at {}", p.display())),
        (None, true) => {
            let d = start_private_daemon(&args.control, "compare")?;
            let pipe = d.pipe_dir().to_path_buf();
            daemon = Some(d);
            (Some(pipe), "private daemon started and stopped by compare".to_string())
        }
        (None, false) => (None, "not used".to_string()),
    };
    let mut outcomes = Vec::new();
    for phase in &phases {
        if orchestrate::interrupted() {
            break;
        }
        let pipe_dir = match phase.mode {
            CompareMode::Mps => mps_pipe_dir.clone().unwrap_or_default(),
            _ => ctx.no_mps_dir.clone(),
        };
        outcomes.push(ctx.run_phase(*phase, &pipe_dir)?);
    }
    if let Some(mut d) = daemon.take() {
        d.copy_logs(&ctx.runner.logs);
        d.stop()?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let interrupted = orchestrate::interrupted();
    let complete = !interrupted && outcomes.len() == phases.len() && outcomes.iter().all(|o| o.complete);
    let record = CompareRecord {
        run_id: ctx.run_id.clone(),
        command_line: std::env::args().collect(),
        complete,
        interrupted,
        mps_pipe_dir: mps_pipe_dir.map(|p| p.display().to_string()),
        mps_daemon,
        phases: outcomes,
        seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&record).map_err(|e| Error::new(e.to_string()))?;
    fsio::write_atomic(&dir.join("compare.json"), text.as_bytes(), Overwrite::Allow)?;
    if !complete {
        fsio::write_atomic(
            &dir.join("INCOMPLETE"),
            b"see compare.json: phases with failures, or interrupted\n",
            Overwrite::Allow,
        )?;
    }
    let results = dir.join("results").display().to_string();
    let notes: Vec<String> = record
        .phases
        .iter()
        .flat_map(|p| p.failures.iter().map(move |f| format!("compare phase {} x{}: {f}", p.mode, p.workers)))
        .collect();
    match super::report::produce(&[results], true, Some(&dir), Overwrite::from_force(true), &notes) {
        Ok((_, summary)) => print!("{summary}"),
        Err(e) => eprintln!("sharebench: error: no report: {e}"),
    }
    eprintln!("sharebench compare: finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(if complete { exit::OK } else { exit::INCOMPLETE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solo_baseline_comes_first_and_is_not_repeated() {
        let all = [CompareMode::Timeslice, CompareMode::Mps, CompareMode::Streams];
        let p = plan_phases(&[4], &all, true);
        assert_eq!(p[0], Phase { mode: CompareMode::Timeslice, workers: 1 });
        assert_eq!(p.len(), 4);
        let sweep = plan_phases(&[1, 2], &all, true);
        // 1 worker: timeslice and mps (streams x1 is the same as timeslice x1); 2 workers: all three.
        assert_eq!(sweep.len(), 5);
        assert_eq!(plan_phases(&[4], &[CompareMode::Mps], false), vec![Phase { mode: CompareMode::Mps, workers: 4 }]);
    }

    #[test]
    fn a_non_empty_run_directory_is_not_reused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "1").unwrap();
        assert!(prepare_run_dir(dir.path(), false).unwrap_err().problem.contains("not empty"));
        prepare_run_dir(dir.path(), true).unwrap();
        assert!(dir.path().join("results").is_dir());
    }
}
