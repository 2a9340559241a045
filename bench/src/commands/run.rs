//! `sharebench run`: one worker. Turns its flags (and its scenario group) into the lifecycle's settings and a
//! workload, sharebench's kernels or a foreign command (`--exec`), and hands them to `lifecycle::run`.

use crate::arrivals::Arrivals;
use crate::cli::{self, ArrivalProcess, ExecArgs, Mode, RunArgs, TenantArgs, WorkloadArgs, DEFAULT_FMA_ITERS};
use crate::error::{Error, Result};
use crate::fsio::Overwrite;
use crate::lifecycle::command::{self, CommandSettings};
use crate::lifecycle::kernels::{KernelSettings, Kernels};
use crate::lifecycle::{self, Barrier, Output, Settings};
use crate::mps::memory;
use crate::result::RunConfig;
use crate::scenario::Scenario;
use crate::tenant::session::Settings as SessionSettings;
use crate::worker::{LoopPlan, Stop};
use crate::workload::{KernelKind, KernelShape};
use crate::{host, rendezvous};

use std::time::Duration;

/// Default recorded kernels per worker when neither --kernels nor --duration is given.
pub const DEFAULT_KERNELS: u64 = 1000;
/// How far ahead of now a worker without a barrier starts measuring a command (it is ready already).
const COMMAND_LEAD: Duration = Duration::from_millis(100);

/// The kernel shape the workload flags describe, on a GPU with `sm_count` SMs.
pub fn shape(args: &WorkloadArgs, sm_count: u32) -> Result<KernelShape> {
    let default_iters = match args.kernel {
        KernelKind::Fma => DEFAULT_FMA_ITERS,
        KernelKind::Tiny | KernelKind::Stream => 0,
    };
    let shape = KernelShape {
        kernel: args.kernel,
        blocks: args.blocks.unwrap_or(sm_count),
        threads: args.threads,
        iters: args.iters.unwrap_or(default_iters),
        bytes: args.bytes,
    };
    shape.validate()?;
    Ok(shape)
}

/// The loop every lane runs.
pub fn plan(args: &WorkloadArgs) -> Result<LoopPlan> {
    let stop = match (args.kernels, args.duration) {
        (Some(0), _) => return Err(Error::flag("--kernels", "must be at least 1")),
        (Some(n), _) => Stop::AfterKernels(n),
        (None, Some(d)) if d.is_zero() => return Err(Error::flag("--duration", "must be longer than 0")),
        (None, Some(d)) => Stop::AfterDuration(d),
        (None, None) => Stop::AfterKernels(DEFAULT_KERNELS),
    };
    let arrivals = match (args.rate, args.arrivals) {
        (None, _) => Arrivals::Closed,
        (Some(r), _) if !(r.is_finite() && r > 0.0 && r <= 1e6) => {
            return Err(Error::flag("--rate", format!("{r} is not in (0, 1000000] requests per second")))
        }
        (Some(rate_per_s), ArrivalProcess::Fixed) => Arrivals::Fixed { rate_per_s },
        (Some(rate_per_s), ArrivalProcess::Poisson) => Arrivals::Poisson { rate_per_s, seed: args.seed },
    };
    Ok(LoopPlan { stop, warmup: args.warmup, fault_after: None, arrivals })
}

/// Workers in the run as the result records them: processes, or for the multi-stream ceiling the streams of
/// all its processes (one per GPU when spread over GPUs, each numbering its lanes from --worker-index).
fn recorded_workers(args: &RunArgs) -> u32 {
    match args.mode {
        Mode::Streams => args.workers.max(args.streams),
        _ => args.workers,
    }
}

/// Checks the flags that do not need a GPU.
pub fn validate(args: &RunArgs) -> Result<()> {
    plan(&args.workload)?;
    shape(&args.workload, 1)?;
    if args.streams == 0 || args.streams > 128 {
        return Err(Error::flag("--streams", format!("{} is not in 1..=128", args.streams)));
    }
    if args.streams > 1 && args.mode != Mode::Streams {
        return Err(Error::flag("--streams", "more than one stream is the multi-stream ceiling: add --mode streams"));
    }
    if args.workers == 0 {
        return Err(Error::flag("--workers", "must be at least 1"));
    }
    if args.foreign.exec && args.workload.hold_memory.is_some() {
        return Err(Error::flag("--hold-memory", "is for sharebench's own kernels: a command takes its own memory")
            .fix("drop --hold-memory, or let the command allocate (bench/tenants/greedy_memory.py does)"));
    }
    let index = args.worker_index.unwrap_or(0);
    let lanes = if args.mode == Mode::Streams { args.streams } else { 1 };
    if index + lanes > recorded_workers(args) {
        return Err(Error::flag(
            "--worker-index",
            format!(
                "{index} is not in 0..{} (--workers; in streams mode, minus --streams - 1)",
                recorded_workers(args)
            ),
        ));
    }
    check_command_needs_exec(&args.foreign)?;
    if args.foreign.exec && args.mode == Mode::Streams {
        return Err(Error::flag(
            "--mode",
            "streams is sharebench's own one-process ceiling; a command runs as timeslice or mps",
        ));
    }
    for (flag, address) in [("--barrier", &args.barrier), ("--barrier-listen", &args.barrier_listen)] {
        if let Some(address) = address {
            crate::units::check_host_port(address).map_err(|e| Error::flag(flag, e))?;
        }
    }
    if args.barrier_listen.is_some() && args.barrier.is_none() {
        return Err(Error::flag(
            "--barrier-listen",
            "needs --barrier too (the address every worker, this one included, joins)",
        ));
    }
    if args.barrier_listen.is_some() && args.run_id.is_none() && args.barrier_token.is_none() {
        return Err(Error::flag(
            "--barrier-listen",
            "needs --run-id (or --barrier-token): without one the barrier would admit any worker with the right count",
        )
        .fix("give every worker of the run the same --run-id (the manifests set $(SHAREBENCH_RUN_ID))"));
    }
    if let Some(out) = &args.out {
        if out.exists() && !args.force {
            return Err(Error::new(format!("{} already exists", out.display()))
                .fix("pass --force to replace it, or choose another --out"));
        }
    }
    Ok(())
}

pub(super) fn default_run_id() -> String {
    format!("run-{}-{}", host::unix_now_ns() / 1_000_000_000, std::process::id())
}

/// What this run's workers must agree on at the barrier: their count, the run id, the scenario file's digest.
pub(super) fn barrier_identity(args: &RunArgs) -> Result<rendezvous::RunIdentity> {
    let digest = match &args.scenario.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the scenario", path, e))?;
            Some(rendezvous::digest(&text))
        }
        None => None,
    };
    let token = args.barrier_token.clone().filter(|t| !t.is_empty());
    Ok(rendezvous::RunIdentity { workers: args.workers, run_id: args.run_id.clone(), digest, token })
}

/// The environment variable through which an MPS client asks for a share of the SMs.
pub const ACTIVE_THREAD_PERCENTAGE: &str = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE";

/// With `--scenario`: this worker's flags as its group in the scenario sets them, and the MPS active thread
/// percentage and memory limit it should run with ([`Knobs`]). Without: the flags as given.
pub fn resolve_scenario(args: &RunArgs) -> Result<(RunArgs, Knobs)> {
    let Some(path) = &args.scenario.scenario else { return Ok((args.clone(), Knobs::default())) };
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("read the scenario", path, e))?;
    let scenario = Scenario::parse(&text, &path.display().to_string())?;
    let pods = args
        .scenario
        .scenario_pods
        .ok_or_else(|| Error::flag("--scenario", "needs --scenario-pods N too (the swept Pod count of this point)"))?;
    if pods == 0 {
        return Err(Error::flag("--scenario-pods", "must be at least 1"));
    }
    if let Some(bad) = args.scenario.neighbour_atp.filter(|p| !(1..=100).contains(p)) {
        return Err(Error::flag("--neighbour-atp", format!("{bad} is not a percentage in 1..=100")));
    }
    let processes = scenario.processes_at(pods);
    if args.workers != processes {
        return Err(Error::flag(
            "--workers",
            format!(
                "is {} but scenario {} at {pods} Pods has {processes} workers: pass --workers {processes}",
                args.workers, scenario.name
            ),
        ));
    }
    let index = args.worker_index.unwrap_or(0);
    let assignment = scenario.assign(pods, index, args.scenario.neighbour_atp).ok_or_else(|| {
        Error::flag("--worker-index", format!("{index} is not in 0..{processes} (the scenario's workers)"))
    })?;
    let mut resolved = args.clone();
    assignment.group.apply_to(&mut resolved.workload, args.workload.rate);
    resolved.group = Some(assignment.group.name.clone());
    resolved.inject_fault_after = assignment.group.fault_after.or(args.inject_fault_after);
    if let Some(command) = &assignment.group.command {
        (resolved.foreign.exec, resolved.foreign.command, resolved.foreign.no_report) =
            (true, command.clone(), !assignment.group.reports);
    }
    let knobs = Knobs {
        active_thread_percentage: assignment.active_thread_percentage,
        memory_limit: assignment.group.memory_limit.clone(),
    };
    Ok((resolved, knobs))
}

/// What a scenario asks of the MPS server for one worker.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Knobs {
    pub active_thread_percentage: Option<u32>,
    /// The group's `memory_limit` (e.g. `8G`).
    pub memory_limit: Option<String>,
}

/// Sets the group's memory limit as `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=<gpu>=<limit>` before any CUDA call. Set
/// in both modes: under time-slicing nothing enforces it, and the check and the report say exactly that.
pub(super) fn request_memory_limit(gpu: u32, limit: Option<&str>) {
    let Some(limit) = limit else { return };
    let value = format!("{gpu}={limit}");
    if let Ok(before) = std::env::var(memory::LIMIT_ENV) {
        if before != value {
            eprintln!("sharebench run: the scenario sets {}={value} (it was {before})", memory::LIMIT_ENV);
        }
    }
    std::env::set_var(memory::LIMIT_ENV, value);
}

/// Asks the MPS server for `pct`% of the SMs: CUDA reads the variable when it creates the context, so this runs
/// before any CUDA call. Only MPS clients are affected; under time-slicing it is not set.
pub(super) fn request_active_thread_percentage(mode: Mode, pct: Option<u32>) {
    let (Mode::Mps, Some(pct)) = (mode, pct) else { return };
    if let Ok(before) = std::env::var(ACTIVE_THREAD_PERCENTAGE) {
        if before != pct.to_string() {
            eprintln!("sharebench run: the scenario sets {ACTIVE_THREAD_PERCENTAGE}={pct} (it was {before})");
        }
    }
    std::env::set_var(ACTIVE_THREAD_PERCENTAGE, pct.to_string());
}

/// How long a barrier waits for every worker: with commands (`tenant` given), their time to get ready (load a
/// model, warm up) comes on top of `base`.
pub fn barrier_wait(base: Duration, tenant: Option<&TenantArgs>) -> Duration {
    base + tenant.map_or(Duration::ZERO, |t| t.ready_timeout)
}

/// A command after `--` is only run with --exec: refused otherwise, rather than silently ignored.
pub fn check_command_needs_exec(foreign: &ExecArgs) -> Result<()> {
    if !foreign.exec && !foreign.command.is_empty() {
        return Err(Error::flag(
            "--exec",
            format!("`{}` after `--` is a command to run: add --exec before `--`", foreign.command.join(" ")),
        ));
    }
    Ok(())
}

/// A command's measured window: --duration (a command is measured for a time, not a count).
pub fn window_length(plan: &LoopPlan) -> Duration {
    match plan.stop {
        Stop::AfterDuration(d) => d,
        Stop::AfterKernels(_) => command::DEFAULT_WINDOW,
    }
}

pub fn execute(args: &RunArgs) -> Result<i32> {
    let (resolved, knobs) = resolve_scenario(args)?;
    validate(&resolved)?;
    // The barrier admits the run id as given (none given: none asked for); the result and a command get one
    // either way.
    let identity = barrier_identity(&resolved)?;
    let args = &RunArgs { run_id: Some(resolved.run_id.clone().unwrap_or_else(default_run_id)), ..resolved };
    // Before anything that takes time: as pid 1 of a Pod, SIGTERM would otherwise be ignored.
    crate::termination::install();

    request_active_thread_percentage(args.mode, knobs.active_thread_percentage);
    request_memory_limit(args.gpu, knobs.memory_limit.as_deref());
    let worker_index = args.worker_index.unwrap_or(0);
    let mut plan = LoopPlan { fault_after: args.inject_fault_after, ..plan(&args.workload)? };
    if let Arrivals::Poisson { seed, .. } = &mut plan.arrivals {
        *seed = seed.wrapping_add(worker_index as u64);
    }
    let mut config = run_config(args, &plan);
    let workload: Box<dyn lifecycle::Workload> = match args.foreign.exec {
        false => {
            let lane_index = |i: u32| if args.mode == Mode::Streams { worker_index + i } else { worker_index };
            let workload_args = args.workload.clone();
            Box::new(Kernels::new(KernelSettings {
                mode: args.mode,
                control: args.control.clone(),
                gpu: args.gpu,
                shape: Box::new(move |sm_count| shape(&workload_args, sm_count)),
                plan,
                labels: (0..args.streams).map(lane_index).collect(),
                sync: args.workload.sync,
                hold_memory: args.workload.hold_memory,
            }))
        }
        true => {
            let window = window_length(&plan);
            (config.kernels, config.duration_s) = (None, Some(window.as_secs_f64()));
            let run_id = args.run_id.clone().unwrap_or_default();
            Box::new(command::Command::new(CommandSettings {
                mode: args.mode,
                control: args.control.clone(),
                gpu: args.gpu,
                command: args.foreign.command.clone(),
                session: SessionSettings {
                    ready_timeout: args.foreign.tenant.ready_timeout,
                    stop_grace: args.foreign.tenant.stop_grace,
                    reports: !args.foreign.no_report,
                    window,
                },
                env: command::command_env(
                    command::Identity {
                        index: worker_index,
                        workers: args.workers,
                        run_id: &run_id,
                        mode: args.mode.label(),
                        group: args.group.as_deref(),
                    },
                    window,
                    &args.workload,
                ),
            }))
        }
    };
    let settings = Settings {
        worker_index,
        identity,
        barrier: args.barrier.clone().map(|addr| Barrier {
            addr,
            listen: args.barrier_listen.clone(),
            wait: barrier_wait(args.barrier_timeout, args.foreign.exec.then_some(&args.foreign.tenant)),
        }),
        lead: if args.foreign.exec { COMMAND_LEAD } else { Duration::ZERO },
        telemetry: match args.telemetry {
            cli::Telemetry::Auto => worker_index == 0,
            cli::Telemetry::On => true,
            cli::Telemetry::Off => false,
        },
        output: Output { path: args.out.clone(), overwrite: Overwrite::from_force(args.force) },
        result: lifecycle::blank_result(
            args.run_id.clone().unwrap_or_else(default_run_id),
            args.mode.label(),
            args.group.clone(),
            config,
        ),
    };
    let code = lifecycle::run(settings, workload)?;
    if args.mode == Mode::Unverified {
        eprintln!(
            "sharebench run: note: no --mode given: the result is recorded as unverified (no MPS check); pass --mode timeslice or --mode mps to verify it"
        );
    }
    Ok(code)
}

/// The configuration a result records: the loop and the run's shape (the kernel is filled in once the GPU is
/// open; a command has none).
fn run_config(args: &RunArgs, plan: &LoopPlan) -> RunConfig {
    RunConfig {
        shape: None,
        command: args.foreign.exec.then(|| args.foreign.command.clone()),
        kernels: match plan.stop {
            Stop::AfterKernels(n) => Some(n),
            Stop::AfterDuration(_) => None,
        },
        duration_s: match plan.stop {
            Stop::AfterDuration(d) => Some(d.as_secs_f64()),
            Stop::AfterKernels(_) => None,
        },
        warmup: plan.warmup,
        arrivals: plan.arrivals,
        workers: recorded_workers(args),
        worker_index: args.worker_index.unwrap_or(0),
        streams: args.streams,
        barrier: args.barrier.is_some(),
        mps_active_thread_percentage: std::env::var(ACTIVE_THREAD_PERCENTAGE).ok().and_then(|v| v.parse().ok()),
        repeat: args.repeat,
        sync: None,
        alone_indices: args.alone_indices.clone(),
        command_line: std::env::args().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["sharebench", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_scenario_group_gives_its_worker_its_thread_percentage_and_memory_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let text = "name = \"s\"\n[[group]]\nname = \"victim\"\nkernel = \"tiny\"\niters = 10\npods = 1\n\
                    memory_limit = \"8G\"\n[[group]]\nname = \"greedy\"\nkernel = \"tiny\"\niters = 10\n\
                    pods = \"sweep\"\nactive_thread_percentage = 25\n";
        std::fs::write(&path, text).unwrap();
        let at = |index: &str| {
            let a = run_args(&["--scenario", path.to_str().unwrap(), "--scenario-pods", "1", "-w", "2"]);
            resolve_scenario(&RunArgs { worker_index: Some(index.parse().unwrap()), ..a }).unwrap()
        };
        let (victim, knobs) = at("0");
        assert_eq!(victim.group.as_deref(), Some("victim"));
        assert_eq!(knobs, Knobs { active_thread_percentage: None, memory_limit: Some("8G".into()) });
        let (_, knobs) = at("1");
        assert_eq!(knobs, Knobs { active_thread_percentage: Some(25), memory_limit: None });
    }

    #[test]
    fn defaults_fill_the_gpu_with_one_block_per_sm() {
        let a = run_args(&[]);
        let s = shape(&a.workload, 132).unwrap();
        assert_eq!((s.kernel, s.blocks, s.threads, s.iters), (KernelKind::Fma, 132, 256, DEFAULT_FMA_ITERS));
        assert_eq!(plan(&a.workload).unwrap().stop, Stop::AfterKernels(DEFAULT_KERNELS));
        let t = shape(&run_args(&["--kernel", "tiny"]).workload, 132).unwrap();
        assert_eq!((t.grid_blocks(), t.iters), (1, 0));
    }

    #[test]
    fn invalid_combinations_name_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&["--kernels", "0"], "--kernels"),
            (&["--duration", "0s"], "--duration"),
            (&["--streams", "4"], "--streams"),
            (&["--workers", "2", "--worker-index", "2"], "--worker-index"),
            (&["--barrier-listen", "0.0.0.0:7777"], "--barrier-listen"),
            (&["--mode", "streams", "--streams", "0"], "--streams"),
            (&["--rate", "0"], "--rate"),
            (&["--rate=-5"], "--rate"),
            (&["--barrier", "notahostport"], "--barrier"),
            (&["--barrier", "host:99999"], "--barrier"),
            (&["--barrier", "a:1", "--barrier-listen", ":7777", "--run-id", "r"], "--barrier-listen"),
        ];
        for (argv, flag) in cases {
            let err = validate(&run_args(argv)).unwrap_err();
            assert!(err.problem.contains(flag), "{argv:?}: {}", err.problem);
        }
        assert!(validate(&run_args(&["--mode", "streams", "--streams", "4"])).is_ok());
        // The second GPU's streams process of an 8-worker ceiling: lanes 4..8.
        let second = ["--mode", "streams", "--streams", "4", "--workers", "8", "--worker-index", "4"];
        assert!(validate(&run_args(&second)).is_ok());
        let beyond = ["--mode", "streams", "--streams", "4", "--workers", "8", "--worker-index", "5"];
        assert!(validate(&run_args(&beyond)).unwrap_err().problem.contains("--worker-index"));
    }

    #[test]
    fn a_rate_makes_an_open_loop() {
        assert_eq!(plan(&run_args(&[]).workload).unwrap().arrivals, Arrivals::Closed);
        let p = plan(&run_args(&["--rate", "500"]).workload).unwrap();
        assert_eq!(p.arrivals, Arrivals::Poisson { rate_per_s: 500.0, seed: 1 });
        let p = plan(&run_args(&["--rate", "500", "--arrivals", "fixed"]).workload).unwrap();
        assert_eq!(p.arrivals, Arrivals::Fixed { rate_per_s: 500.0 });
        let err = Cli::try_parse_from(["sharebench", "run", "--arrivals", "fixed"]).unwrap_err().to_string();
        assert!(err.contains("--rate"), "arrivals need a rate: {err}");
    }

    #[test]
    fn kernels_and_duration_conflict_at_parse_time() {
        let err = Cli::try_parse_from(["sharebench", "run", "--kernels", "5", "--duration", "1s"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict, "{err}");
    }
}
