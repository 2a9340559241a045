//! `sharebench compare`: the default job on one GPU machine. Runs the same workload as N worker processes under
//! time-slicing (verified: not MPS clients), under MPS (a private daemon, or `--mps-pipe-dir`; verified: all
//! joined), and as N streams in one process (the ceiling for spatial sharing), for each worker count; then
//! writes the report into the run directory.
//!
//! Workers are child processes running `sharebench run` (see `orchestrate`); they meet at a barrier this process
//! serves on loopback. The private daemon is stopped on every exit path, Ctrl-C included.

mod alone;
mod placement;

use crate::analysis::{Warning, WarningKind};
use crate::cli::{CompareArgs, CompareMode, MpsControlArgs, MpsDaemons, ObserverDesign, PhaseOrder, WorkloadArgs};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::mps::daemon::PrivateDaemon;
use crate::orchestrate::{self, Runner, WorkerSpec};
use crate::result::WorkerResult;
use crate::{gpu, host};
use placement::{Placement, StreamsProcess};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One step of the plan: a mode at a worker count, in one repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub mode: CompareMode,
    pub workers: u32,
    pub repeat: u32,
}

/// How long each phase measures when neither --kernels nor --duration is given: long enough for a valid run
/// (0.5 s and a p99 bound per mode) with room to spare, short enough for 3 repeats of 4 phases in 30 s.
pub const DEFAULT_PHASE: std::time::Duration = std::time::Duration::from_secs(1);

/// The phases of one repeat in order: the solo baseline first (unless asked not to or already in the sweep), then
/// each worker count through each mode.
pub fn plan_phases(counts: &[u32], modes: &[CompareMode], solo: bool) -> Vec<Phase> {
    let mut phases = Vec::new();
    if solo && !counts.contains(&1) {
        phases.push(Phase { mode: CompareMode::Timeslice, workers: 1, repeat: 0 });
    }
    for &workers in counts {
        for &mode in modes {
            if !(mode == CompareMode::Streams && workers == 1 && modes.contains(&CompareMode::Timeslice)) {
                phases.push(Phase { mode, workers, repeat: 0 });
            }
        }
    }
    phases
}

/// Every repeat's phases: the repeat's phases in order (interleaved: TS, MPS, streams, TS, MPS, ...), or each
/// repeat's shuffled with a generator seeded by `seed` (randomised blocks), so drift hits every mode alike.
pub fn repeated_phases(one: &[Phase], repeats: u32, order: PhaseOrder, seed: u64) -> Vec<Phase> {
    let mut rng = crate::analysis::stats::SplitMix64::new(seed);
    (0..repeats)
        .flat_map(|repeat| {
            let mut block: Vec<Phase> = one.iter().map(|p| Phase { repeat, ..*p }).collect();
            if order == PhaseOrder::Shuffled {
                // Fisher-Yates.
                for i in (1..block.len()).rev() {
                    block.swap(i, rng.below(i + 1));
                }
            }
            block
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    pub mode: String,
    pub workers: u32,
    pub repeat: u32,
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
    /// CUDA ordinals of the GPUs, in `--gpus` order (worker i ran on the (i mod n)-th).
    pub gpus: Vec<u32>,
    /// The MPS pipe directory of each GPU.
    pub mps_pipe_dirs: Vec<String>,
    pub mps_daemon: String,
    /// Repeats of every phase, their order, and the seed of a shuffled order.
    pub repeats: u32,
    pub order: String,
    pub order_seed: Option<u64>,
    pub phases: Vec<PhaseOutcome>,
    pub seconds: f64,
}

/// How the MPS workers on one GPU reach their daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct MpsRoute {
    pub pipe_dir: PathBuf,
    /// The `--gpu` the worker passes: as the daemon numbers the GPUs it serves.
    pub gpu_arg: u32,
    /// A private daemon renumbers the GPUs it was given; its clients must not set CUDA_VISIBLE_DEVICES.
    pub unset_visible_devices: bool,
}

struct Context<'a> {
    args: &'a CompareArgs,
    /// The workload every worker runs (the flags', with compare's default measuring time).
    workload: WorkloadArgs,
    runner: Runner,
    run_id: String,
    results: PathBuf,
    no_mps_dir: PathBuf,
    placement: Placement,
    /// One route per GPU of the placement (empty when MPS is not run).
    mps: Vec<MpsRoute>,
}

impl Context<'_> {
    /// The flags every worker of a phase gets, whatever its GPU.
    fn common_args(&self, phase: Phase, label: &str) -> Vec<String> {
        let mut args = match self.args.foreign.exec {
            false => self.workload.to_args(),
            true => {
                let mut a = self.workload.window_args();
                if self.workload.duration.is_none() {
                    let window = crate::lifecycle::command::DEFAULT_WINDOW;
                    a.extend(["--duration".into(), format!("{}ms", window.as_millis())]);
                }
                a.push("--exec".into());
                a.extend(self.args.foreign.tenant.to_args());
                if self.args.foreign.no_report {
                    a.push("--no-protocol".into());
                }
                a
            }
        };
        args.extend(["--mode".into(), phase.mode.label().into(), "--run-id".into(), self.run_id.clone()]);
        args.extend(["--repeat".into(), phase.repeat.to_string()]);
        args.extend(self.args.control.to_args());
        args.extend(["--out".into(), self.results.join(format!("{label}.json")).display().to_string()]);
        if self.args.force {
            args.push("--force".into());
        }
        args
    }

    /// A worker on the GPU at `position`: its `--gpu`, pipe directory and environment under `mode`.
    fn on_gpu(
        &self,
        mode: CompareMode,
        position: usize,
        (label, index): (String, u32),
        mut args: Vec<String>,
    ) -> WorkerSpec {
        let (gpu, pipe_dir, unset) = match (mode, self.mps.get(position)) {
            (CompareMode::Mps, Some(route)) => {
                let unset = if route.unset_visible_devices { vec!["CUDA_VISIBLE_DEVICES".into()] } else { vec![] };
                (route.gpu_arg, route.pipe_dir.clone(), unset)
            }
            _ => (self.placement.gpus[position], self.no_mps_dir.clone(), vec![]),
        };
        args.extend(["--gpu".into(), gpu.to_string()]);
        if self.args.foreign.exec {
            args.push("--".into());
            args.extend(self.args.foreign.command.iter().cloned());
        }
        WorkerSpec { label, index, args, env: vec![("CUDA_MPS_PIPE_DIRECTORY".into(), pipe_dir.into())], unset }
    }

    /// The worker processes of one phase: N workers spread over the GPUs, or for the ceiling one process per GPU.
    fn specs(&self, phase: Phase) -> Vec<WorkerSpec> {
        let n = phase.workers.to_string();
        if phase.mode == CompareMode::Streams {
            return self
                .placement
                .streams(phase.workers)
                .into_iter()
                .map(|StreamsProcess { position, first_lane, streams }| {
                    let label = format!("w{}-streams-{position}-r{}", phase.workers, phase.repeat + 1);
                    let mut args = self.common_args(phase, &label);
                    args.extend(["--streams".into(), streams.to_string(), "--workers".into(), n.clone()]);
                    args.extend(["--worker-index".into(), first_lane.to_string()]);
                    // Each ceiling process has a GPU of its own: each samples it.
                    args.extend(["--telemetry".into(), "on".into()]);
                    self.on_gpu(phase.mode, position, (label, first_lane), args)
                })
                .collect();
        }
        (0..phase.workers)
            .map(|index| {
                let label = format!("w{}-{}-{index}-r{}", phase.workers, phase.mode.label(), phase.repeat + 1);
                let mut args = self.common_args(phase, &label);
                args.extend(["--workers".into(), n.clone(), "--worker-index".into(), index.to_string()]);
                if self.placement.first_on_its_gpu(index) {
                    args.extend(["--telemetry".into(), "on".into()]);
                }
                if self.args.inject_fault && index == 0 && phase.workers > 1 {
                    let half = self.workload.kernels.unwrap_or(1) / 2;
                    args.extend(["--inject-fault-after".into(), half.to_string()]);
                }
                self.on_gpu(phase.mode, self.placement.position_of(index), (label, index), args)
            })
            .collect()
    }

    fn run_phase(&self, phase: Phase) -> Result<PhaseOutcome> {
        let of = if self.args.repeat > 1 {
            format!(" (repeat {} of {})", phase.repeat + 1, self.args.repeat)
        } else {
            String::new()
        };
        let title = format!("{} x{}{of}", phase.mode.label(), phase.workers);
        let specs = self.specs(phase);
        let outcome = match self.shares_window(phase) {
            false => self.runner.run_group(&title, &specs)?,
            true => {
                let (supervised, alone) = split_window(specs, phase.repeat);
                let alone_phase = self.alone_phase(phase, &alone);
                eprintln!(
                    "sharebench compare: {title}: Pods {:?} supervised, {:?} alone, in one window (--observer-effect)",
                    supervised.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
                    alone.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
                );
                let (outcome, results) =
                    self.runner.run_group_beside(&title, &supervised, alone.len() as u32, |seat| match seat {
                        Some(seat) => alone::run(&alone_phase, alone::Start::Shared(&seat)),
                        None => Err(Error::new("no barrier for the shared window")),
                    })?;
                self.write_alone(&alone, results?)?;
                outcome
            }
        };
        Ok(PhaseOutcome {
            mode: phase.mode.label().into(),
            workers: phase.workers,
            repeat: phase.repeat,
            complete: outcome.complete,
            seconds: outcome.seconds,
            failures: outcome.failures,
        })
    }

    /// Whether this phase's Pods are split between supervised and alone in one window (`--observer-effect`
    /// with the shared-window design, 2 Pods or more); else an observer-effect phase runs twice.
    fn shares_window(&self, phase: Phase) -> bool {
        self.args.observer_effect && self.args.observer_design == ObserverDesign::SharedWindow && phase.workers >= 2
    }
}

/// The shared window's two halves: the Pods of even index supervised in even repeats, those of odd index in odd
/// ones (so no index, and no place in the start order, is always on one side). Each supervised worker records
/// which Pods ran alone beside it, and the first of them samples the GPU (worker 0 may be alone).
fn split_window(specs: Vec<WorkerSpec>, repeat: u32) -> (Vec<WorkerSpec>, Vec<WorkerSpec>) {
    let (mut supervised, alone): (Vec<_>, Vec<_>) = specs.into_iter().partition(|spec| (spec.index + repeat) % 2 == 0);
    let alone_list = alone.iter().map(|s| s.index.to_string()).collect::<Vec<_>>().join(",");
    for (position, spec) in supervised.iter_mut().enumerate() {
        let mut flags = vec!["--alone-indices".to_string(), alone_list.clone()];
        if position == 0 && !spec.args.iter().any(|a| a == "--telemetry") {
            flags.extend(["--telemetry".into(), "on".into()]);
        }
        orchestrate::insert_before_command(&mut spec.args, flags);
    }
    (supervised, alone)
}

impl Context<'_> {
    /// The phase again with no worker beside its commands (`--observer-effect`, paired design); results go to
    /// `alone/`, each with the GPU its supervised twin recorded.
    fn run_alone(&self, phase: Phase) -> Result<()> {
        let specs = self.specs(phase);
        eprintln!(
            "sharebench compare: {} x{} again, its commands alone (--observer-effect)",
            phase.mode.label(),
            phase.workers
        );
        let results = alone::run(&self.alone_phase(phase, &specs), alone::Start::Own)?;
        self.write_alone(&specs, results)
    }

    /// How the Pods of `specs` run alone in `phase`.
    fn alone_phase<'a>(&'a self, phase: Phase, specs: &[WorkerSpec]) -> alone::AlonePhase<'a> {
        let tenant = &self.args.foreign.tenant;
        let tenants = specs
            .iter()
            .map(|s| alone::AloneTenant {
                index: s.index,
                label: s.label.clone(),
                env: s.env.clone(),
                unset: s.unset.clone(),
            })
            .collect();
        alone::AlonePhase {
            command: &self.args.foreign.command,
            workers: phase.workers,
            tenants,
            mode: phase.mode.label(),
            run_id: format!("{}-alone", self.run_id),
            workload: &self.workload,
            window: self.workload.duration.unwrap_or(crate::lifecycle::command::DEFAULT_WINDOW),
            ready_timeout: tenant.ready_timeout,
            stop_grace: tenant.stop_grace,
            scratch: self.no_mps_dir.with_file_name("alone"),
            logs: self.runner.logs.join("alone"),
            repeat: phase.repeat,
        }
    }

    /// Writes the alone results into `alone/`, each with the GPU and host a supervised result of the run
    /// recorded (its twin, or in the paired design's odd repeats, run before it, an earlier phase's).
    fn write_alone(&self, specs: &[WorkerSpec], results: Vec<WorkerResult>) -> Result<()> {
        let run_dir = self.results.parent().unwrap_or(Path::new("."));
        let read = |p: PathBuf| std::fs::read_to_string(p).ok().and_then(|t| WorkerResult::from_json(&t).ok());
        let earlier = || std::fs::read_dir(&self.results).ok()?.flatten().find_map(|e| read(e.path()));
        let twin = specs.first().and_then(|s| read(self.results.join(format!("{}.json", s.label)))).or_else(earlier);
        let out = run_dir.join("alone");
        std::fs::create_dir_all(&out).map_err(|e| Error::io("create directory", &out, e))?;
        for (spec, mut result) in specs.iter().zip(results) {
            if let Some(twin) = &twin {
                (result.gpu, result.host.hostname) = (twin.gpu.clone(), twin.host.hostname.clone());
            }
            let path = out.join(format!("{}.json", spec.label));
            let line = format!("{}\n", result.to_json_line());
            fsio::write_atomic(&path, line.as_bytes(), Overwrite::from_force(self.args.force))?;
        }
        Ok(())
    }
}

/// The MPS daemons of a run: an existing one (`--mps-pipe-dir`: it numbers the GPUs as this process does), or
/// private ones, one per GPU or one shared, each given only the run's GPUs. Returns the route of each GPU,
/// the daemons to stop, and how the run's record describes them.
fn start_mps(args: &CompareArgs, placement: &Placement) -> Result<(Vec<MpsRoute>, Vec<PrivateDaemon>, String)> {
    if let Some(pipe) = &args.mps_pipe_dir {
        let routes = placement
            .gpus
            .iter()
            .map(|&g| MpsRoute { pipe_dir: pipe.clone(), gpu_arg: g, unset_visible_devices: false })
            .collect();
        return Ok((routes, vec![], format!("existing daemon at {}", pipe.display())));
    }
    let parent = std::env::var("CUDA_VISIBLE_DEVICES").ok();
    let visible = |ordinals: &[u32]| {
        placement::visible_devices(parent.as_deref(), ordinals).map_err(|e| Error::flag("--gpus", e))
    };
    match args.mps_daemons {
        MpsDaemons::Shared => {
            let d = start_private_daemon(&args.control, "compare", "", Some(&visible(&placement.gpus)?))?;
            let routes = (0..placement.gpus.len())
                .map(|p| MpsRoute { pipe_dir: d.pipe_dir().into(), gpu_arg: p as u32, unset_visible_devices: true })
                .collect();
            let text = format!("one private daemon for GPUs {:?}, started and stopped by compare", placement.gpus);
            Ok((routes, vec![d], text))
        }
        MpsDaemons::PerGpu => {
            let mut daemons = Vec::new();
            for &g in &placement.gpus {
                daemons.push(start_private_daemon(
                    &args.control,
                    "compare",
                    &format!("-gpu{g}"),
                    Some(&visible(&[g])?),
                )?);
            }
            let routes = daemons
                .iter()
                .map(|d| MpsRoute { pipe_dir: d.pipe_dir().into(), gpu_arg: 0, unset_visible_devices: true })
                .collect();
            let text = format!("one private daemon per GPU ({:?}), started and stopped by compare", placement.gpus);
            Ok((routes, daemons, text))
        }
    }
}

/// Stops the private daemons, keeping their logs in `logs` (a fresh daemon per repeat: in `logs/mps-repeat-N`).
fn stop_daemons(daemons: &mut Vec<PrivateDaemon>, logs: &Path, per_repeat: Option<u32>) -> Result<()> {
    let dir = match per_repeat {
        Some(repeat) => logs.join(format!("mps-repeat-{repeat}")),
        None => logs.to_path_buf(),
    };
    let _ = std::fs::create_dir_all(&dir);
    let mut stopped = Ok(());
    for d in daemons.iter_mut() {
        d.copy_logs(&dir);
        stopped = stopped.and(d.stop());
    }
    daemons.clear();
    stopped
}

/// The MPS server serves at most 48 clients per GPU (measured: the 49th is refused), so an MPS phase may not put
/// more workers than that on one GPU; time-slicing has no such limit.
fn check_mps_clients(counts: &[u32], modes: &[CompareMode], gpus: u32) -> Result<()> {
    let most = counts.iter().copied().max().unwrap_or(0);
    let per_gpu = most.div_ceil(gpus.max(1));
    if modes.contains(&CompareMode::Mps) && per_gpu > MPS_CLIENTS_PER_GPU {
        return Err(Error::flag(
            "--workers",
            format!(
                "{most} workers put {per_gpu} MPS clients on a GPU: the MPS server takes at most {MPS_CLIENTS_PER_GPU}"
            ),
        )
        .fix("use fewer workers, more --gpus, or --modes timeslice"));
    }
    Ok(())
}

/// Clients one MPS server serves per GPU.
const MPS_CLIENTS_PER_GPU: u32 = 48;

/// `sharebench-compare-<invocation id>`: unique to this invocation, even a second after the last one.
fn default_run_dir() -> PathBuf {
    PathBuf::from(format!("sharebench-compare-{}", host::invocation_id()))
}

/// Whether `dir` holds no file but those named in `made` (and empty directories): a run that failed before it
/// measured or logged anything.
pub fn holds_nothing_measured(dir: &Path, made: &[&str]) -> bool {
    fn walk(dir: &Path, top: bool, made: &[&str]) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else { return true };
        entries.flatten().all(|e| {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => walk(&path, false, made),
                _ => top && made.iter().any(|m| e.file_name() == *m),
            }
        })
    }
    walk(dir, true, made)
}

/// Starts the private MPS daemon a run uses (its own pipe and log directories under /tmp).
/// `tag` names it among several; `visible_devices` limits it to those GPUs (see `PrivateDaemon::start`).
pub fn start_private_daemon(
    control: &MpsControlArgs,
    who: &str,
    tag: &str,
    visible_devices: Option<&str>,
) -> Result<PrivateDaemon> {
    let program = crate::mps::control::locate(control.mps_control.as_deref()).ok_or_else(|| {
        Error::new("nvidia-cuda-mps-control not found on PATH: cannot start an MPS daemon")
            .fix("install the NVIDIA driver utilities, pass --mps-control PATH, or leave mps out of --modes")
    })?;
    let d = PrivateDaemon::start(&program, Path::new("/tmp"), control.mps_timeout, tag, visible_devices)?;
    let gpus = visible_devices.map(|v| format!(" for GPUs {v}")).unwrap_or_default();
    eprintln!("sharebench {who}: started a private MPS daemon{gpus} (pipe directory {})", d.pipe_dir().display());
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

/// The modes a run measures: the streams ceiling is sharebench's own kernels in one process, so it does not
/// apply to a foreign command, and is left out with a note.
fn modes_for(args: &CompareArgs) -> Result<(Vec<CompareMode>, Option<String>)> {
    let mut modes = args.modes.clone();
    let mut note = None;
    if args.foreign.exec && modes.contains(&CompareMode::Streams) {
        modes.retain(|&m| m != CompareMode::Streams);
        note = Some(
            "the one-process multi-stream ceiling was not run: it is sharebench's own kernels on N streams of one \
             process, which a foreign command cannot be made into"
                .to_string(),
        );
    }
    if modes.is_empty() {
        return Err(Error::flag("--modes", "name at least one of timeslice, mps (and streams without --exec)"));
    }
    Ok((modes, note))
}

/// The workload of every worker: the flags', measuring for [`DEFAULT_PHASE`] where neither a kernel count nor a
/// duration was given.
fn workload_of(args: &CompareArgs) -> WorkloadArgs {
    let mut w = args.workload.clone();
    if w.kernels.is_none() && w.duration.is_none() && !args.foreign.exec {
        w.duration = Some(DEFAULT_PHASE);
    }
    w
}

pub fn execute(args: &CompareArgs) -> Result<i32> {
    let workload = workload_of(args);
    super::run::plan(&workload)?;
    super::run::shape(&workload, 1)?;
    super::run::check_command_needs_exec(&args.foreign)?;
    let (modes, streams_note) = modes_for(args)?;
    if let Some(note) = &streams_note {
        eprintln!("sharebench compare: {note}");
    }
    let placement = Placement { gpus: args.gpus.as_ref().map(|g| g.0.clone()).unwrap_or_else(|| vec![args.gpu]) };
    check_mps_clients(&args.workers.0, &modes, placement.gpus.len() as u32)?;
    let visible = gpu::visible_gpus()?;
    if let Some(missing) = placement.gpus.iter().find(|&&g| g >= visible) {
        let flag = if args.gpus.is_some() { "--gpus" } else { "--gpu" };
        return Err(Error::flag(flag, format!("GPU {missing} does not exist: this process sees {visible}"))
            .observed(format!("CUDA_VISIBLE_DEVICES={}", std::env::var("CUDA_VISIBLE_DEVICES").unwrap_or_default())));
    }
    let started = Instant::now();
    let dir = args.out.clone().unwrap_or_else(default_run_dir);
    prepare_run_dir(&dir, args.force)?;
    let exe = std::env::current_exe().map_err(|e| Error::new(format!("cannot find the sharebench executable: {e}")))?;
    let scratch = std::env::temp_dir().join(format!("sharebench-{}", std::process::id()));
    let no_mps_dir = scratch.join("no-mps");
    std::fs::create_dir_all(&no_mps_dir).map_err(|e| Error::io("create directory", &no_mps_dir, e))?;
    orchestrate::install_interrupt_handler();
    let phases =
        repeated_phases(&plan_phases(&args.workers.0, &modes, !args.no_solo), args.repeat, args.order, args.order_seed);
    let uses_mps = phases.iter().any(|p| p.mode == CompareMode::Mps);
    let (mps, mut daemons, mut mps_daemon) = match uses_mps {
        true => start_mps(args, &placement)?,
        false => (vec![], vec![], "not used".to_string()),
    };
    if uses_mps && args.fresh_mps_daemon {
        mps_daemon += "; a fresh one for every repeat (--fresh-mps-daemon)";
    }
    let mut ctx = Context {
        args,
        workload,
        runner: Runner {
            exe,
            logs: dir.join("logs"),
            barrier_timeout: super::run::barrier_wait(
                args.barrier_timeout,
                args.foreign.exec.then_some(&args.foreign.tenant),
            ),
            live: std::io::stderr().is_terminal(),
        },
        run_id: format!("compare-{}", host::unix_now_ns() / 1_000_000_000),
        results: dir.join("results"),
        no_mps_dir,
        placement,
        mps,
    };
    eprintln!(
        "sharebench compare: {} phases on GPU {:?}, run directory {}",
        phases.len(),
        ctx.placement.gpus,
        dir.display()
    );
    let mut outcomes = Vec::new();
    let mut ran = Ok(());
    for phase in &phases {
        if orchestrate::interrupted() {
            break;
        }
        if uses_mps
            && args.fresh_mps_daemon
            && phase.repeat > 0
            && outcomes.last().is_some_and(|o: &PhaseOutcome| o.repeat != phase.repeat)
        {
            if let Err(e) = stop_daemons(&mut daemons, &ctx.runner.logs, Some(phase.repeat)) {
                ran = Err(e);
                break;
            }
            match start_mps(args, &ctx.placement) {
                Ok((routes, fresh, _)) => (ctx.mps, daemons) = (routes, fresh),
                Err(e) => {
                    ran = Err(e);
                    break;
                }
            }
        }
        // With --observer-effect the pair's order alternates (supervised first in even repeats, alone first in
        // odd ones), so neither side always follows the other.
        let paired = args.observer_effect && !ctx.shares_window(*phase);
        let alone_first = paired && phase.repeat % 2 == 1;
        let alone = |ctx: &Context| match paired && !orchestrate::interrupted() {
            true => ctx.run_alone(*phase),
            false => Ok(()),
        };
        if alone_first {
            if let Err(e) = alone(&ctx) {
                ran = Err(e);
                break;
            }
        }
        match ctx.run_phase(*phase) {
            Ok(o) => outcomes.push(o),
            Err(e) => {
                ran = Err(e);
                break;
            }
        }
        if !alone_first {
            if let Err(e) = alone(&ctx) {
                ran = Err(e);
                break;
            }
        }
    }
    let stopped = stop_daemons(&mut daemons, &ctx.runner.logs, args.fresh_mps_daemon.then_some(args.repeat));
    ran?;
    stopped?;
    let _ = std::fs::remove_dir_all(&scratch);
    let interrupted = orchestrate::interrupted();
    let complete = !interrupted && outcomes.len() == phases.len() && outcomes.iter().all(|o| o.complete);
    let record = CompareRecord {
        run_id: ctx.run_id.clone(),
        command_line: std::env::args().collect(),
        complete,
        interrupted,
        gpus: ctx.placement.gpus.clone(),
        mps_pipe_dirs: ctx.mps.iter().map(|r| r.pipe_dir.display().to_string()).collect(),
        mps_daemon,
        repeats: args.repeat,
        order: format!("{:?}", args.order).to_lowercase(),
        order_seed: (args.order == PhaseOrder::Shuffled).then_some(args.order_seed),
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
    let scope = streams_note.map(|text| Warning {
        kind: WarningKind::NotApplicable,
        run_id: record.run_id.clone(),
        subject: "streams".into(),
        text,
    });
    let notes: Vec<Warning> = record
        .phases
        .iter()
        .flat_map(|p| {
            let run = &record.run_id;
            let repeat = if record.repeats > 1 { format!(" repeat {}", p.repeat + 1) } else { String::new() };
            p.failures.iter().map(move |f| Warning {
                kind: WarningKind::Failed,
                run_id: run.clone(),
                subject: format!("{} x{}{repeat}", p.mode, p.workers),
                text: format!("compare phase {} x{}{repeat}: {f}", p.mode, p.workers),
            })
        })
        .chain(scope)
        .collect();
    match super::report::produce(std::slice::from_ref(&results), true, Some(&dir), Overwrite::from_force(true), &notes)
    {
        Ok((_, summary)) => print!("{summary}"),
        Err(e) => eprintln!("sharebench: error: no report: {e}"),
    }
    if args.observer_effect {
        match observer_effect(&results, &dir) {
            Ok(text) => print!("\n{text}"),
            Err(e) => eprintln!("sharebench: error: no observer-effect table: {e}"),
        }
    }
    eprintln!("sharebench compare: finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(if complete { exit::OK } else { exit::INCOMPLETE })
}

/// Sets the supervised results beside the alone ones (`--observer-effect`); writes `observer-effect.md` and
/// `.json` into the run directory and returns the Markdown. `cargo run --example observer_table RUN_DIR` does it
/// again for a finished run (its results/ and alone/ may be compressed).
pub fn observer_effect(results: &str, dir: &Path) -> Result<String> {
    let supervised = crate::load::load(&[results.to_string()], true)?;
    let alone = crate::load::load(&[dir.join("alone").display().to_string()], true)?;
    let analysis = |ws: &[crate::load::Worker]| crate::analysis::analyze(ws);
    let rows = crate::analysis::observer::compare(
        &analysis(&supervised.workers),
        &analysis(&alone.workers),
        &supervised.workers,
    );
    let text = crate::analysis::observer::render_markdown(&rows);
    let json = serde_json::to_string_pretty(&rows).map_err(|e| Error::new(e.to_string()))?;
    fsio::write_atomic(&dir.join("observer-effect.md"), text.as_bytes(), Overwrite::Allow)?;
    fsio::write_atomic(&dir.join("observer-effect.json"), json.as_bytes(), Overwrite::Allow)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn solo_baseline_comes_first_and_is_not_repeated() {
        let all = [CompareMode::Timeslice, CompareMode::Mps, CompareMode::Streams];
        let p = plan_phases(&[4], &all, true);
        assert_eq!(p[0], Phase { mode: CompareMode::Timeslice, workers: 1, repeat: 0 });
        assert_eq!(p.len(), 4);
        let sweep = plan_phases(&[1, 2], &all, true);
        // 1 worker: timeslice and mps (streams x1 is the same as timeslice x1); 2 workers: all three.
        assert_eq!(sweep.len(), 5);
        assert_eq!(
            plan_phases(&[4], &[CompareMode::Mps], false),
            vec![Phase { mode: CompareMode::Mps, workers: 4, repeat: 0 }]
        );
    }

    #[test]
    fn repeats_interleave_the_modes_or_shuffle_each_block_reproducibly() {
        let all = [CompareMode::Timeslice, CompareMode::Mps, CompareMode::Streams];
        let one = plan_phases(&[4], &all, false);
        let interleaved = repeated_phases(&one, 3, PhaseOrder::Interleaved, 1);
        let modes: Vec<&str> = interleaved.iter().map(|p| p.mode.label()).collect();
        assert_eq!(
            modes,
            ["timeslice", "mps", "streams", "timeslice", "mps", "streams", "timeslice", "mps", "streams"]
        );
        assert_eq!(interleaved.iter().map(|p| p.repeat).collect::<Vec<_>>(), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        let shuffled = repeated_phases(&one, 8, PhaseOrder::Shuffled, 7);
        assert_eq!(shuffled, repeated_phases(&one, 8, PhaseOrder::Shuffled, 7), "the seed fixes the order");
        // Each block still holds every phase once, and not every block is in the listed order.
        for r in 0..8 {
            let mut block: Vec<&str> = shuffled.iter().filter(|p| p.repeat == r).map(|p| p.mode.label()).collect();
            block.sort_unstable();
            assert_eq!(block, ["mps", "streams", "timeslice"]);
        }
        assert_ne!(
            shuffled.iter().map(|p| p.mode).collect::<Vec<_>>(),
            repeated_phases(&one, 8, PhaseOrder::Interleaved, 7).iter().map(|p| p.mode).collect::<Vec<_>>()
        );
    }

    fn compare_args(extra: &[&str]) -> CompareArgs {
        use clap::Parser;
        let argv = ["sharebench", "compare"].iter().chain(extra).copied();
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Compare(a) => a,
            _ => unreachable!(),
        }
    }

    fn value(spec: &WorkerSpec, flag: &str) -> String {
        spec.args[spec.args.iter().position(|a| a == flag).unwrap() + 1].clone()
    }

    #[test]
    fn workers_alternate_over_the_gpus_each_with_its_own_daemon() {
        let args = compare_args(&["--gpus", "0,1"]);
        let route = |dir: &str| MpsRoute { pipe_dir: dir.into(), gpu_arg: 0, unset_visible_devices: true };
        let ctx = Context {
            args: &args,
            workload: workload_of(&args),
            runner: Runner { exe: "x".into(), logs: "l".into(), barrier_timeout: Duration::from_secs(1), live: false },
            run_id: "r".into(),
            results: "res".into(),
            no_mps_dir: "/none".into(),
            placement: Placement { gpus: vec![0, 1] },
            mps: vec![route("/p0"), route("/p1")],
        };
        let mps = ctx.specs(Phase { mode: CompareMode::Mps, workers: 4, repeat: 1 });
        assert_eq!(mps[2].label, "w4-mps-2-r2");
        assert_eq!(value(&mps[2], "--repeat"), "1");
        assert_eq!(value(&mps[2], "--duration"), "1000ms", "compare measures 1 s per phase by default");
        let pipes: Vec<_> = mps.iter().map(|s| s.env[0].1.to_string_lossy().into_owned()).collect();
        assert_eq!(pipes, ["/p0", "/p1", "/p0", "/p1"]);
        // A private daemon renumbers its GPU as 0, and its clients must not set CUDA_VISIBLE_DEVICES.
        assert!(mps.iter().all(|s| value(s, "--gpu") == "0" && s.unset == ["CUDA_VISIBLE_DEVICES"]));
        let ts = ctx.specs(Phase { mode: CompareMode::Timeslice, workers: 4, repeat: 0 });
        let gpus: Vec<_> = ts.iter().map(|s| value(s, "--gpu")).collect();
        assert_eq!(gpus, ["0", "1", "0", "1"]);
        assert!(ts.iter().all(|s| s.env[0].1 == "/none" && s.unset.is_empty()));
        let streams = ctx.specs(Phase { mode: CompareMode::Streams, workers: 4, repeat: 0 });
        let shape: Vec<_> =
            streams.iter().map(|s| (value(s, "--gpu"), value(s, "--streams"), value(s, "--worker-index"))).collect();
        assert_eq!(shape, [("0".into(), "2".into(), "0".into()), ("1".into(), "2".into(), "2".into())]);
        assert!(streams.iter().all(|s| value(s, "--workers") == "4"));
    }

    #[test]
    fn a_shared_window_alternates_its_supervised_pods_by_repeat_and_tells_them_who_ran_alone() {
        let spec = |i: u32| WorkerSpec {
            label: format!("w4-mps-{i}-r1"),
            index: i,
            args: ["--worker-index", &i.to_string(), "--exec", "--", "python3", "t.py"].map(String::from).to_vec(),
            env: vec![],
            unset: vec![],
        };
        let specs = || (0..4).map(spec).collect::<Vec<_>>();
        let labels = |s: &[WorkerSpec]| s.iter().map(|s| s.label.clone()).collect::<Vec<_>>();
        let (supervised, alone) = split_window(specs(), 0);
        assert_eq!(labels(&supervised), ["w4-mps-0-r1", "w4-mps-2-r1"]);
        assert_eq!(labels(&alone), ["w4-mps-1-r1", "w4-mps-3-r1"]);
        // The worker's flags go before the command's `--`; only the first supervised worker samples the GPU.
        assert_eq!(
            supervised[0].args,
            ["--worker-index", "0", "--exec", "--alone-indices", "1,3", "--telemetry", "on", "--", "python3", "t.py"]
        );
        assert!(!supervised[1].args.contains(&"--telemetry".to_string()));
        assert_eq!(alone[0].args, spec(1).args, "the alone side's specs are only read for their environment");
        let (supervised, _) = split_window(specs(), 1);
        assert_eq!(labels(&supervised), ["w4-mps-1-r1", "w4-mps-3-r1"], "swapped in the next repeat");
        let args = compare_args(&["--exec", "--observer-effect", "--", "true"]);
        assert_eq!(args.observer_design, ObserverDesign::SharedWindow, "the default");
    }

    #[test]
    fn the_mps_client_limit_applies_per_gpu_and_only_to_mps() {
        assert!(check_mps_clients(&[49], &[CompareMode::Timeslice], 1).is_ok());
        let err = check_mps_clients(&[1, 49], &[CompareMode::Timeslice, CompareMode::Mps], 1).unwrap_err();
        assert!(
            err.problem.contains("49 MPS clients on a GPU") && err.problem.contains("at most 48"),
            "{}",
            err.problem
        );
        assert!(check_mps_clients(&[64], &[CompareMode::Mps], 2).is_ok(), "32 per GPU");
        assert!(check_mps_clients(&[97], &[CompareMode::Mps], 2).is_err());
    }

    #[test]
    fn a_run_directory_with_nothing_measured_is_told_apart_from_one_with_results_or_logs() {
        let dir = tempfile::tempdir().unwrap();
        prepare_run_dir(dir.path(), false).unwrap();
        std::fs::write(dir.path().join("scenario.toml"), "x").unwrap();
        assert!(holds_nothing_measured(dir.path(), &["scenario.toml"]));
        assert!(!holds_nothing_measured(dir.path(), &[]), "a file not named as made by the run");
        std::fs::write(dir.path().join("logs").join("w0.log"), "worker 0 failed").unwrap();
        assert!(!holds_nothing_measured(dir.path(), &["scenario.toml"]), "a worker's log is kept for diagnosis");
        assert_ne!(default_run_dir(), default_run_dir(), "two invocations never share a directory");
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
