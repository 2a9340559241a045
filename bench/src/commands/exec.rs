//! `sharebench run --exec -- COMMAND`: one worker whose workload is a foreign command. The worker verifies its
//! own mode (and releases its context), starts the command in the same environment, waits for it to report
//! ready, verifies the command's own processes are in that mode, meets its peers at the barrier, tells the
//! command the common window, and afterwards stops it and turns the requests it reported inside the window
//! into a result like any other worker's.

use super::run;
use crate::cli::{ExecArgs, Mode, RunArgs, TenantArgs};
use crate::error::{exit, Error, Result};
use crate::gpu::Gpu;
use crate::result::tenant::TenantReport;
use crate::result::{histogram, LaneResult, RunStatus, SharingEvidence, SharingVerdict, WorkerResult};
use crate::tenant::membership::TreeDecision;
use crate::tenant::protocol::env;
use crate::tenant::session::{Finished, Session, Settings};
use crate::tenant::supervise::Tenant;
use crate::tenant::window::Window;
use crate::worker::{LoopPlan, Stop};
use crate::{host, rendezvous, units};
use std::time::Duration;

/// The window when neither --duration nor a scenario sets one.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(20);
/// How far ahead of now a worker without a barrier starts its window.
const LEAD: Duration = Duration::from_millis(100);

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

/// The measured window's length: --duration (a command is measured for a time, not a count).
pub fn window_length(plan: &LoopPlan) -> Duration {
    match plan.stop {
        Stop::AfterDuration(d) => d,
        Stop::AfterKernels(_) => DEFAULT_WINDOW,
    }
}

/// What the command is told: who it is, what to do, and the MPS environment the worker verified for itself.
fn command_env(args: &RunArgs, run_id: &str, window: Duration, pipe_dir: &std::path::Path) -> Vec<(String, String)> {
    let w = &args.workload;
    let mut vars = vec![
        (env::WORKER_INDEX, args.worker_index.unwrap_or(0).to_string()),
        (env::WORKERS, args.workers.to_string()),
        (env::RUN_ID, run_id.to_string()),
        (env::MODE, args.mode.label().to_string()),
        (env::DURATION_S, format!("{}", window.as_secs_f64())),
        (env::SEED, w.seed.wrapping_add(args.worker_index.unwrap_or(0) as u64).to_string()),
        ("CUDA_MPS_PIPE_DIRECTORY", pipe_dir.display().to_string()),
    ];
    match w.rate {
        Some(rate) => {
            vars.push((env::RATE, rate.to_string()));
            vars.push((env::ARRIVALS, format!("{:?}", w.arrivals).to_lowercase()));
        }
        None => vars.push((env::ARRIVALS, "closed".into())),
    }
    if let Some(group) = &args.group {
        vars.push((env::GROUP, group.clone()));
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The worker's own mode, verified with a context of its own, which is released before the command starts (so
/// that the daemon's client rows from this PID namespace can only be the command's).
fn verify_self(args: &RunArgs) -> Result<(crate::result::GpuIdentity, SharingEvidence)> {
    let gpu = Gpu::open(args.gpu)?;
    let sharing = match super::check::expectation_for(args.mode) {
        Some(expect) => super::check::verify(expect, &args.control, &gpu)?,
        None => super::check::unverified(),
    };
    Ok((gpu.identity().clone(), sharing))
}

/// The command's mode as its worker must prove it; `None` when unverified.
fn verify_command(args: &RunArgs, tenant: &Tenant, pipe_dir: &std::path::Path) -> Option<TreeDecision> {
    let expect_mps = match args.mode {
        Mode::Mps => true,
        Mode::Timeslice => false,
        Mode::Streams | Mode::Unverified => return None,
    };
    Some(crate::tenant::verify(tenant.pid(), pipe_dir, &args.control, expect_mps))
}

/// A decision that forbids measuring: the command is in the wrong mode, or its mode cannot be told.
fn refusal(decision: &TreeDecision) -> Option<Error> {
    if decision.as_expected || decision.gpu_processes.is_empty() {
        return None;
    }
    let fix = match decision.verdict {
        SharingVerdict::MpsJoined => "for time-slicing, give the command an empty CUDA_MPS_PIPE_DIRECTORY (or none with no daemon)",
        SharingVerdict::Unverified => "run the command as the only GPU user of its PID namespace, and let it keep CUDA_MPS_PIPE_DIRECTORY as given",
        _ => "check that the command keeps CUDA_MPS_PIPE_DIRECTORY as given and that its pipe directory is the daemon's (sharebench check)",
    };
    Some(
        Error::new(format!(
            "refusing to measure: the command is not in mode {}: {}",
            decision.verdict.label(),
            decision.text
        ))
        .fix(fix)
        .exit_code(exit::NOT_JOINED),
    )
}

/// The sharing evidence of the result: the command's decision (at ready, or at the end when it had no context
/// yet at ready), with the worker's own check kept beside it.
fn command_sharing(
    own: SharingEvidence,
    at_ready: &Option<TreeDecision>,
    at_end: &Option<TreeDecision>,
) -> SharingEvidence {
    let decided = match (at_ready, at_end) {
        (Some(r), Some(e)) if r.gpu_processes.is_empty() => Some(e),
        (Some(r), _) => Some(r),
        (None, e) => e.as_ref(),
    };
    match decided {
        Some(d) => SharingEvidence { verdict: d.verdict, proof: d.proof.clone(), check: own.check },
        None => own,
    }
}

/// One line on stderr with what was measured.
fn summarize(result: &WorkerResult, report: &TenantReport, lane: &LaneResult) {
    let latency = histogram::from_base64(&lane.latency_histogram).ok().filter(|h| !h.is_empty());
    let figures = match latency {
        Some(h) => format!(
            "{} requests | latency p50 {} p99 {}",
            lane.kernels,
            units::format_ns(h.value_at_quantile(0.5) as f64),
            units::format_ns(h.value_at_quantile(0.99) as f64)
        ),
        None => "no requests reported (a neighbour only)".into(),
    };
    eprintln!(
        "sharebench run: {} worker {} on {}: command {} ({}) | {figures}",
        result.mode,
        lane.worker,
        result.gpu.name,
        report.ending,
        report.exit_status.as_deref().unwrap_or("?")
    );
}

pub fn execute(args: &RunArgs) -> Result<i32> {
    let plan = run::plan(&args.workload)?;
    let window_len = window_length(&plan);
    let worker_index = args.worker_index.unwrap_or(0);
    let run_id = args.run_id.clone().unwrap_or_else(run::default_run_id);
    let args = &RunArgs { run_id: Some(run_id.clone()), ..args.clone() };
    let identity = run::barrier_identity(args)?;
    let barrier_server = run::spawn_barrier_server(args, &identity)?;
    let (gpu, own_sharing) = verify_self(args)?;
    let mut config = run::run_config(args, &plan, None);
    (config.kernels, config.duration_s) = (None, Some(window_len.as_secs_f64()));
    let mut result = run::new_result(args, gpu, config);
    let (pipe_dir, _) = crate::mps::check::context_pipe_dir();
    let settings = Settings {
        ready_timeout: args.foreign.tenant.ready_timeout,
        stop_grace: args.foreign.tenant.stop_grace,
        reports: !args.foreign.no_report,
        window: window_len,
    };
    let env = command_env(args, &run_id, window_len, &pipe_dir);
    let mut session = Session::start(&args.foreign.command, &env, settings, &std::env::temp_dir())?;
    // Without a window (never ready), the result still belongs to its run: it spans the command's life.
    result.started_unix_ns = host::unix_now_ns();
    let window = match session.until_ready() {
        true => {
            let at_ready = verify_command(args, session.tenant(), &pipe_dir);
            if let Some(refused) = at_ready.as_ref().and_then(refusal) {
                session.stop();
                return Err(refused);
            }
            session.report.membership_at_ready = at_ready;
            let start_unix_ns = match &args.barrier {
                Some(addr) => rendezvous::join(addr, worker_index, &identity, run::barrier_wait(args))?,
                None => host::unix_now_ns() + LEAD.as_nanos() as u64,
            };
            Some(Window { start_unix_ns, end_unix_ns: start_unix_ns + window_len.as_nanos() as u64 })
        }
        false => None,
    };
    if let Some(window) = window {
        let sampler = run::start_sampler(args, &result.gpu.uuid, rendezvous::start_instant(window.start_unix_ns));
        let cgroup_before = crate::cgroup::read();
        let went_through = session.measure(window)?;
        let ended = host::unix_now_ns().min(window.end_unix_ns);
        result.host_conditions = run::host_conditions_over(cgroup_before, window.start_unix_ns, ended);
        if went_through {
            session.report.membership_at_end = verify_command(args, session.tenant(), &pipe_dir);
        }
        result.telemetry = sampler.map(crate::telemetry::Sampler::finish);
        (result.started_unix_ns, result.finished_unix_ns) =
            (window.start_unix_ns, host::unix_now_ns().min(window.end_unix_ns));
    }
    let Finished { report, lane, mut problems } = session.finish(worker_index)?;
    if window.is_none() {
        result.finished_unix_ns = host::unix_now_ns();
    }
    if let Some(server) = barrier_server {
        server.join().map_err(|_| Error::new("the barrier server thread failed"))??;
    }
    if let Some(end) = report.membership_at_end.as_ref().filter(|d| !d.as_expected && !d.gpu_processes.is_empty()) {
        problems.push(format!("at the window's end the command was not in its mode: {}", end.text));
    }
    result.sharing = command_sharing(own_sharing, &report.membership_at_ready, &report.membership_at_end);
    if let Some(stopped) = crate::termination::describe() {
        problems.push(stopped);
    }
    result.status = RunStatus {
        complete: problems.is_empty(),
        error: (!problems.is_empty()).then(|| problems.join("; ")),
        terminated: crate::result::Terminated::received(),
    };
    summarize(&result, &report, &lane);
    result.lanes = vec![lane];
    result.tenant = Some(report);
    run::write_result(args, &result)?;
    if let Some(error) = &result.status.error {
        eprintln!("sharebench: error: the command's run is incomplete; what it reported was kept\n  cause: {error}");
        return Ok(exit::INCOMPLETE);
    }
    Ok(exit::OK)
}
