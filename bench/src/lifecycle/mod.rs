//! One worker's life, the same for both workloads (sharebench's kernels, or a foreign command as the Pod's
//! tenant): prepare (open the GPU, verify the sharing mode, warm up, or start the command and wait until it is
//! ready) -> meet the peers at the barrier -> measure -> stop -> write one result.
//!
//! Everything a Pod's life does to a worker is handled here, once: SIGTERM or SIGINT at any step ends measuring
//! at once and the result is written with what was recorded, marked terminated with the signal's time (see
//! `termination`); the host's conditions (the worker's cgroup, its own CPU time, the GPU's settings) and the GPU
//! telemetry are taken around the measuring window. A [`Workload`] only says how to prepare, measure and stop;
//! `commands/run.rs` turns flags into [`Settings`] and a workload, and the lifecycle is tested on CI with a mock
//! workload (`bench/tests/lifecycle.rs`).

pub mod command;
pub mod kernels;
pub mod mode;

use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::result::host::HostConditions;
use crate::result::tenant::TenantReport;
use crate::result::{GpuIdentity, LaneResult, RunConfig, RunStatus, SharingEvidence, WorkerResult};
use crate::workload::KernelShape;
use crate::{cgroup, host, rendezvous, telemetry, termination};
use std::path::PathBuf;
use std::time::Duration;

/// The barrier a worker meets its peers at.
#[derive(Debug, Clone)]
pub struct Barrier {
    /// HOST:PORT every worker joins.
    pub addr: String,
    /// Worker 0 also serves it here.
    pub listen: Option<String>,
    /// How long to wait for every worker.
    pub wait: Duration,
}

/// Where the result goes.
#[derive(Debug, Clone)]
pub struct Output {
    /// A file (written atomically), or stdout as one line.
    pub path: Option<PathBuf>,
    pub overwrite: Overwrite,
}

/// What the lifecycle needs besides the workload.
pub struct Settings {
    pub worker_index: u32,
    /// What the run's workers agree on at the barrier.
    pub identity: rendezvous::RunIdentity,
    pub barrier: Option<Barrier>,
    /// With no barrier, how far ahead of now measuring starts.
    pub lead: Duration,
    /// Whether this worker samples GPU telemetry.
    pub telemetry: bool,
    pub output: Output,
    /// The result's identity and configuration, with nothing measured yet.
    pub result: WorkerResult,
}

/// What a workload knows once it is ready to measure.
pub struct Prepared {
    pub gpu: GpuIdentity,
    pub sharing: SharingEvidence,
    /// The kernel launched (`None`: a command).
    pub shape: Option<KernelShape>,
    /// How the worker waits for its GPU work (`spin`, `yield`, `blocking`, and why), where it launches any.
    pub sync: Option<String>,
    /// False when it never got ready (a command that never said `ready`): nothing is measured, the result
    /// still says what happened.
    pub ready: bool,
}

/// What a workload hands back when it has stopped.
pub struct Measured {
    pub lanes: Vec<LaneResult>,
    pub tenant: Option<TenantReport>,
    /// The sharing evidence, where measuring changed it (a command's, verified at ready and at the end).
    pub sharing: Option<SharingEvidence>,
    /// What went wrong, each in a sentence; empty when complete.
    pub problems: Vec<String>,
    /// The context's memory as measuring left it, where measuring changed it (a hold taken at the start).
    pub memory: Option<crate::result::memory::ContextMemory>,
    /// Lines for the person watching (stderr).
    pub summary: Vec<String>,
}

/// A worker's workload: how it prepares, measures and stops. The lifecycle calls the steps in order.
pub trait Workload {
    /// Opens what it needs, verifies the sharing mode and gets ready to measure.
    fn prepare(&mut self) -> Result<Prepared>;
    /// Measures from `start_unix_ns` until its plan ends or a stop is requested ([`termination::requested`]);
    /// returns when measuring ended (Unix ns).
    fn measure(&mut self, start_unix_ns: u64) -> Result<u64>;
    /// Stops (a command: SIGTERM, SIGKILL after its grace) and hands back what was recorded, as `worker`'s.
    fn finish(self: Box<Self>, worker: u32) -> Result<Measured>;
}

/// Runs `workload` through its life and writes its result. Returns the exit code.
pub fn run(settings: Settings, mut workload: Box<dyn Workload>) -> Result<i32> {
    let server = spawn_barrier_server(&settings)?;
    let began_unix_ns = host::unix_now_ns();
    let prepared = workload.prepare()?;
    let mut result = settings.result.clone();
    (result.gpu, result.sharing, result.config.shape) = (prepared.gpu, prepared.sharing, prepared.shape);
    result.config.sync = prepared.sync;
    result.started_unix_ns = began_unix_ns;
    let mut problems = Vec::new();
    let (mut measured_window, mut stopped_at_barrier) = (false, false);
    if prepared.ready {
        // The GPU's settings are read, and NVML loaded, before the barrier: their cost falls outside the window.
        let gpu_settings = telemetry::gpu_settings(&result.gpu.uuid);
        let sampler = settings.telemetry.then(|| {
            let who = format!("worker {}", settings.worker_index);
            telemetry::Sampler::start(&result.gpu.uuid, telemetry::INTERVAL, &who)
        });
        match start(&settings) {
            Ok(start_unix_ns) => {
                if let Some(s) = &sampler {
                    s.begin(rendezvous::start_instant(start_unix_ns));
                }
                let (cgroup_before, cpu_before) = (cgroup::read(), cgroup::own_cpu_s());
                let end_unix_ns = workload.measure(start_unix_ns)?;
                let mut conditions = host_conditions(cgroup_before, cpu_before, start_unix_ns, end_unix_ns);
                if let Some(c) = conditions.as_mut() {
                    c.gpu_settings = Some(gpu_settings);
                }
                result.host_conditions = conditions;
                result.telemetry = sampler.map(telemetry::Sampler::finish);
                (result.started_unix_ns, result.finished_unix_ns) = (start_unix_ns, end_unix_ns);
                measured_window = true;
            }
            // Stopped while waiting for its peers: nothing was measured, and the result says so.
            Err(e) if termination::requested() => {
                problems.push(e.problem);
                stopped_at_barrier = true;
            }
            Err(e) => return Err(e),
        }
    }
    let measured = workload.finish(settings.worker_index)?;
    if !measured_window {
        result.finished_unix_ns = host::unix_now_ns();
    }
    if let Some(server) = server {
        match server.join() {
            Ok(served) => served?,
            Err(_) => return Err(Error::new("the barrier server thread failed")),
        }
    }
    problems.extend(measured.problems);
    if let Some(stopped) = termination::describe().filter(|_| !stopped_at_barrier) {
        problems.push(stopped);
    }
    result.status = RunStatus {
        complete: problems.is_empty(),
        error: (!problems.is_empty()).then(|| problems.join("; ")),
        terminated: termination::as_result(),
    };
    if let Some(sharing) = measured.sharing {
        result.sharing = sharing;
    }
    if let Some(memory) = measured.memory {
        result.gpu.context_memory = Some(memory);
    }
    (result.lanes, result.tenant) = (measured.lanes, measured.tenant);
    for line in &measured.summary {
        eprintln!("sharebench run: {line}");
    }
    write_result(&settings.output, &result)?;
    if let Some(error) = &result.status.error {
        eprintln!(
            "sharebench: error: the run is incomplete; everything recorded before that was kept\n  cause: {error}"
        );
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}

/// Starts serving the barrier in the background on worker 0 (every Pod of a Job gets the same arguments).
fn spawn_barrier_server(settings: &Settings) -> Result<Option<std::thread::JoinHandle<Result<()>>>> {
    let Some(Barrier { listen: Some(listen), wait, .. }) = &settings.barrier else { return Ok(None) };
    if settings.worker_index != 0 {
        return Ok(None);
    }
    let listener = rendezvous::bind(listen)?;
    let (identity, wait) = (settings.identity.clone(), *wait);
    Ok(Some(std::thread::spawn(move || rendezvous::serve(listener, identity, wait).map(|_| ()))))
}

/// When measuring starts: the barrier's common instant, or `lead` from now.
fn start(settings: &Settings) -> Result<u64> {
    match &settings.barrier {
        Some(b) => rendezvous::join(&b.addr, settings.worker_index, &settings.identity, b.wait),
        None => Ok(host::unix_now_ns() + settings.lead.as_nanos() as u64),
    }
}

/// The host's conditions from a cgroup snapshot and CPU time taken at `start` to now (`end`, Unix ns); `None`
/// where no cgroup could be read.
fn host_conditions(
    before: Option<cgroup::Snapshot>,
    cpu_before: Option<f64>,
    start: u64,
    end: u64,
) -> Option<HostConditions> {
    let (before, after) = (before?, cgroup::read()?);
    let window_s = end.saturating_sub(start) as f64 / 1e9;
    let worker_cpu_s = cgroup::own_cpu_s().zip(cpu_before).map(|(a, b)| (a - b).max(0.0));
    Some(cgroup::conditions_between(&before, &after, window_s, cgroup::read_load(), worker_cpu_s))
}

/// A result with its identity and configuration filled in and nothing measured yet.
pub fn blank_result(run_id: String, mode: &str, group: Option<String>, config: RunConfig) -> WorkerResult {
    WorkerResult {
        format: crate::result::FORMAT.into(),
        schema_version: crate::result::SCHEMA_VERSION,
        sharebench_version: env!("CARGO_PKG_VERSION").into(),
        run_id,
        mode: mode.into(),
        group,
        status: RunStatus { complete: true, error: None, terminated: None },
        host: host::identity(),
        gpu: GpuIdentity::default(),
        config,
        sharing: mode::unverified(),
        started_unix_ns: 0,
        finished_unix_ns: 0,
        lanes: vec![],
        telemetry: None,
        tenant: None,
        host_conditions: None,
    }
}

/// Writes the result to its file (atomically, never over one unless allowed) or as one line on stdout.
pub fn write_result(output: &Output, result: &WorkerResult) -> Result<()> {
    let line = result.to_json_line();
    match &output.path {
        Some(path) => fsio::write_atomic(path, format!("{line}\n").as_bytes(), output.overwrite),
        None => {
            println!("{line}");
            Ok(())
        }
    }
}
