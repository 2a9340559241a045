//! `sharebench run`: one worker. Validates its flags, verifies the sharing mode, warms up, meets its peers at
//! the barrier, runs the closed loop on each lane and writes one result document.

use crate::arrivals::Arrivals;
use crate::cli::{self, ArrivalProcess, Mode, RunArgs, WorkloadArgs, DEFAULT_FMA_ITERS};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::gpu::Gpu;
use crate::result::{self, histogram, records, GpuIdentity, LaneResult, RunConfig, RunStatus, WorkerResult};
use crate::scenario::Scenario;
use crate::worker::{self, LaneRecording, LoopPlan, Stop};
use crate::workload::{KernelKind, KernelShape};
use crate::{host, rendezvous, telemetry, units};
use std::time::Instant;

/// Default recorded kernels per worker when neither --kernels nor --duration is given.
pub const DEFAULT_KERNELS: u64 = 1000;

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
    super::exec::check_command_needs_exec(&args.foreign)?;
    if args.foreign.exec && args.mode == Mode::Streams {
        return Err(Error::flag(
            "--mode",
            "streams is sharebench's own one-process ceiling; a command runs as timeslice or mps",
        ));
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

/// Starts serving the barrier in the background on worker 0 (every Pod of a Job gets the same arguments).
pub(super) fn spawn_barrier_server(
    args: &RunArgs,
    identity: &rendezvous::RunIdentity,
) -> Result<Option<std::thread::JoinHandle<Result<()>>>> {
    let Some(listen) = &args.barrier_listen else { return Ok(None) };
    if args.worker_index.unwrap_or(0) != 0 {
        return Ok(None);
    }
    let listener = rendezvous::bind(listen)?;
    let (identity, timeout) = (identity.clone(), barrier_wait(args));
    Ok(Some(std::thread::spawn(move || rendezvous::serve(listener, identity, timeout).map(|_| ()))))
}

/// How long the barrier waits for every worker of this run.
pub(super) fn barrier_wait(args: &RunArgs) -> std::time::Duration {
    super::exec::barrier_wait(args.barrier_timeout, args.foreign.exec.then_some(&args.foreign.tenant))
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
/// percentage it should run with. Without: the flags as given.
pub fn resolve_scenario(args: &RunArgs) -> Result<(RunArgs, Option<u32>)> {
    let Some(path) = &args.scenario.scenario else { return Ok((args.clone(), None)) };
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
    if let Some(command) = &assignment.group.command {
        (resolved.foreign.exec, resolved.foreign.command, resolved.foreign.no_report) =
            (true, command.clone(), !assignment.group.reports);
    }
    Ok((resolved, assignment.active_thread_percentage))
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

pub fn execute(args: &RunArgs) -> Result<i32> {
    let (resolved, active_thread_percentage) = resolve_scenario(args)?;
    let args = &resolved;
    validate(args)?;
    // Before anything that takes time: as pid 1 of a Pod, SIGTERM would otherwise be ignored.
    crate::termination::install();
    request_active_thread_percentage(args.mode, active_thread_percentage);
    if args.foreign.exec {
        return super::exec::execute(args);
    }
    let worker_index = args.worker_index.unwrap_or(0);
    let mut plan = LoopPlan { fault_after: args.inject_fault_after, ..plan(&args.workload)? };
    if let Arrivals::Poisson { seed, .. } = &mut plan.arrivals {
        *seed = seed.wrapping_add(worker_index as u64);
    }
    // What this run's workers agree on at the barrier, read once for serving and joining.
    let identity = barrier_identity(args)?;
    let barrier_server = spawn_barrier_server(args, &identity)?;
    let gpu = Gpu::open(args.gpu)?;
    let shape = shape(&args.workload, gpu.identity().sm_count)?;
    let sharing = match super::check::expectation_for(args.mode) {
        Some(expect) => super::check::verify(expect, &args.control, &gpu)?,
        None => super::check::unverified(),
    };

    let mut lanes = (0..args.streams).map(|_| gpu.lane(shape, plan.stamp_capacity())).collect::<Result<Vec<_>>>()?;
    for lane in &lanes {
        worker::warm_up(lane, &plan)?;
    }
    let start = match &args.barrier {
        Some(addr) => rendezvous::start_instant(rendezvous::join(addr, worker_index, &identity, args.barrier_timeout)?),
        None => Instant::now(),
    };
    let started_unix_ns = host::unix_now_ns();
    let lane_index = |i: u32| if args.mode == Mode::Streams { worker_index + i } else { worker_index };
    let labels: Vec<u32> = (0..args.streams).map(lane_index).collect();
    let sampler = start_sampler(args, &gpu.identity().uuid, start);
    let cgroup_before = crate::cgroup::read();
    let recordings = worker::run_lanes(&mut lanes, &labels, &plan, start);
    let finished_unix_ns = host::unix_now_ns();
    let host_conditions = host_conditions_over(cgroup_before, started_unix_ns, finished_unix_ns);
    let telemetry = sampler.map(telemetry::Sampler::finish);
    if let Some(server) = barrier_server {
        server.join().map_err(|_| Error::new("the barrier server thread failed"))??;
    }

    let errors: Vec<String> = recordings.iter().filter_map(|r| r.error.as_ref().map(|e| e.problem.clone())).collect();
    let lanes =
        recordings.iter().enumerate().map(|(i, rec)| lane_result(labels[i], rec)).collect::<Result<Vec<_>>>()?;
    let result = WorkerResult {
        telemetry,
        host_conditions,
        status: RunStatus {
            complete: errors.is_empty(),
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            terminated: crate::result::Terminated::received(),
        },
        sharing,
        started_unix_ns,
        finished_unix_ns,
        lanes,
        ..new_result(args, gpu.identity().clone(), run_config(args, &plan, Some(shape)))
    };
    summarize(&result, &recordings);
    write_result(args, &result)?;
    if let Some(e) = recordings.iter().find_map(|r| r.error.as_ref()) {
        eprintln!("sharebench: error: the run stopped early; the kernels recorded before that were kept\n  cause: {e}");
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}

/// One telemetry sampler per GPU of the run (worker 0's, or the first worker's on each GPU), on its own thread.
pub(super) fn start_sampler(args: &RunArgs, uuid: &str, start: Instant) -> Option<telemetry::Sampler> {
    let worker_index = args.worker_index.unwrap_or(0);
    let samples = match args.telemetry {
        cli::Telemetry::Auto => worker_index == 0,
        cli::Telemetry::On => true,
        cli::Telemetry::Off => false,
    };
    let who = format!("worker {worker_index}");
    samples.then(|| telemetry::Sampler::start(uuid, start, telemetry::INTERVAL, &who))
}

/// The configuration a result records: the loop, the run's shape, and the kernel (absent for a command).
pub(super) fn run_config(args: &RunArgs, plan: &LoopPlan, shape: Option<KernelShape>) -> RunConfig {
    RunConfig {
        shape,
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
        command_line: std::env::args().collect(),
    }
}

/// The host's conditions over a window that began with `before` (a cgroup snapshot) and ran from `start` to
/// `end` (Unix ns); `None` where no cgroup could be read.
pub(super) fn host_conditions_over(
    before: Option<crate::cgroup::Snapshot>,
    start: u64,
    end: u64,
) -> Option<crate::cgroup::HostConditions> {
    let (before, after) = (before?, crate::cgroup::read()?);
    let window_s = end.saturating_sub(start) as f64 / 1e9;
    Some(crate::cgroup::HostConditions::between(&before, &after, window_s, crate::cgroup::read_load()))
}

/// A result of this worker with its identity filled in and nothing measured yet.
pub(super) fn new_result(args: &RunArgs, gpu: GpuIdentity, config: RunConfig) -> WorkerResult {
    WorkerResult {
        format: result::FORMAT.into(),
        schema_version: result::SCHEMA_VERSION,
        sharebench_version: env!("CARGO_PKG_VERSION").into(),
        run_id: args.run_id.clone().unwrap_or_else(default_run_id),
        mode: args.mode.label().into(),
        group: args.group.clone(),
        status: RunStatus { complete: true, error: None, terminated: None },
        host: host::identity(),
        gpu,
        config,
        sharing: super::check::unverified(),
        started_unix_ns: 0,
        finished_unix_ns: 0,
        lanes: vec![],
        telemetry: None,
        tenant: None,
        host_conditions: None,
    }
}

/// Writes the result to --out (atomically, never over a file unless --force) or as one line on stdout.
pub(super) fn write_result(args: &RunArgs, result: &WorkerResult) -> Result<()> {
    let line = result.to_json_line();
    match &args.out {
        Some(path) => fsio::write_atomic(path, format!("{line}\n").as_bytes(), Overwrite::from_force(args.force)),
        None => {
            println!("{line}");
            Ok(())
        }
    }
}

fn lane_result(worker: u32, rec: &LaneRecording) -> Result<LaneResult> {
    let encoded = records::encode(&rec.records, rec.host_base_unix_ns)
        .map_err(|e| Error::new(format!("encoding records: {e}")))?;
    Ok(LaneResult {
        worker,
        kernels: encoded.count,
        latency_histogram: histogram::to_base64(&rec.histogram),
        records: encoded,
        device_stamps: true,
    })
}

fn shape_name(config: &RunConfig) -> String {
    config.shape.map(|s| s.kernel.to_string()).unwrap_or_else(|| "requests".into())
}

/// One line per lane on stderr, so a person watching sees what was measured.
fn summarize(result: &WorkerResult, recordings: &[LaneRecording]) {
    for (lane, rec) in result.lanes.iter().zip(recordings) {
        let h = &rec.histogram;
        eprintln!(
            "sharebench run: {} worker {} on {}: {} kernels {} | latency p50 {} p99 {} max {}",
            result.mode,
            lane.worker,
            result.gpu.name,
            lane.kernels,
            shape_name(&result.config),
            units::format_ns(h.value_at_quantile(0.5) as f64),
            units::format_ns(h.value_at_quantile(0.99) as f64),
            units::format_ns(h.max() as f64),
        );
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
        assert!(Cli::try_parse_from(["sharebench", "run", "--arrivals", "fixed"]).is_err());
    }

    #[test]
    fn kernels_and_duration_conflict_at_parse_time() {
        assert!(Cli::try_parse_from(["sharebench", "run", "--kernels", "5", "--duration", "1s"]).is_err());
    }
}
