//! Plan points as local worker processes on this GPU: `sharebench run --scenario` children meeting at a
//! loopback barrier (see `orchestrate`), under a private MPS daemon for the MPS settings.

use super::{worker_flags, PointRun, Points};
use crate::cli::{CompareMode, PlanArgs};
use crate::commands::compare::start_private_daemon;
use crate::error::{Error, Result};
use crate::gpu;
use crate::mps::daemon::PrivateDaemon;
use crate::orchestrate::{Runner, WorkerSpec};
use crate::scenario::Scenario;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Requests after which the injected fault fires (early in a point, so that everyone is running).
const FAULT_AFTER: u64 = 200;

pub struct LocalPoints {
    args: PlanArgs,
    scenario: Scenario,
    scenario_path: String,
    exe: PathBuf,
    daemon: Option<PrivateDaemon>,
    /// An empty pipe directory: time-sliced workers find no MPS daemon there.
    no_mps: PathBuf,
}

impl LocalPoints {
    /// Checks the driver and starts the private MPS daemon when a mode needs it.
    pub fn start(args: &PlanArgs, scenario: &Scenario, scenario_path: &Path) -> Result<LocalPoints> {
        gpu::ensure_driver()?;
        let exe =
            std::env::current_exe().map_err(|e| Error::new(format!("cannot find the sharebench executable: {e}")))?;
        let no_mps = std::env::temp_dir().join(format!("sharebench-{}-no-mps", std::process::id()));
        std::fs::create_dir_all(&no_mps).map_err(|e| Error::io("create directory", &no_mps, e))?;
        let daemon = match args.modes.contains(&CompareMode::Mps) {
            true => Some(start_private_daemon(&args.control, "plan", "", None)?),
            false => None,
        };
        Ok(LocalPoints {
            args: args.clone(),
            scenario: scenario.clone(),
            scenario_path: scenario_path.display().to_string(),
            exe,
            daemon,
            no_mps,
        })
    }

    fn pipe_dir(&self, mode: CompareMode) -> &Path {
        match (mode, &self.daemon) {
            (CompareMode::Mps, Some(d)) => d.pipe_dir(),
            _ => &self.no_mps,
        }
    }
}

/// The worker processes of one point: each is `sharebench run --scenario` with its index, named after its group.
pub fn worker_specs(
    args: &PlanArgs,
    scenario: &Scenario,
    scenario_path: &str,
    point: &PointRun,
    pipe_dir: &Path,
) -> Vec<WorkerSpec> {
    let shared = worker_flags(point, scenario_path, scenario.has_commands().then_some(&args.tenant));
    let fault_worker = point.processes.saturating_sub(1);
    (0..point.processes)
        .filter_map(|index| {
            let group = &scenario.assign(point.load.pods, index, point.setting.neighbour_atp)?.group.name;
            let label = format!("{group}-{index}-r{}", point.repeat + 1);
            let mut a = shared.clone();
            a.extend(["--worker-index".into(), index.to_string(), "--gpu".into(), args.gpu.to_string()]);
            a.extend(args.control.to_args());
            a.extend(["--out".into(), point.dir.join(format!("{label}.json")).display().to_string()]);
            if point.load.fault && index == fault_worker {
                a.extend(["--inject-fault-after".into(), FAULT_AFTER.to_string()]);
            }
            let env = vec![("CUDA_MPS_PIPE_DIRECTORY".to_string(), pipe_dir.as_os_str().to_owned())];
            Some(WorkerSpec { label, index, args: a, env, unset: vec![] })
        })
        .collect()
}

impl Points for LocalPoints {
    fn run(&mut self, point: &PointRun) -> Result<Vec<String>> {
        let runner = Runner {
            exe: self.exe.clone(),
            logs: point.dir.clone(),
            barrier_timeout: crate::commands::run::barrier_wait(
                self.args.barrier_timeout,
                self.scenario.has_commands().then_some(&self.args.tenant),
            ),
            live: std::io::stderr().is_terminal(),
        };
        let pipe_dir = self.pipe_dir(point.setting.mode).to_path_buf();
        let specs = worker_specs(&self.args, &self.scenario, &self.scenario_path, point, &pipe_dir);
        Ok(runner.run_group(&point.title, &specs)?.failures)
    }

    fn finish(&mut self, dir: &Path) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.no_mps);
        match self.daemon.take() {
            Some(mut d) => {
                d.copy_logs(&dir.join("logs"));
                d.stop()
            }
            None => Ok(()),
        }
    }

    fn describe(&self) -> String {
        let mps = self.daemon.as_ref().map(|d| format!(", MPS through a private daemon ({})", d.pipe_dir().display()));
        format!("local worker processes on GPU {}{}", self.args.gpu, mps.unwrap_or_default())
    }
}
