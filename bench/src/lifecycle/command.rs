//! A foreign command as the workload (`run --exec -- COMMAND`): the worker verifies its own mode with a context
//! of its own and releases it, starts the command in the same environment, waits for it to report ready,
//! verifies the command's own processes are in that mode, and then, over the common window, stays out of the
//! way: it sleeps between the protocol lines it is handed and never touches the GPU. Afterwards it stops the
//! command and turns the requests it reported inside the window into a lane like any other worker's.

use super::{mode, Measured, Prepared, Workload};
use crate::cli::{Mode, MpsControlArgs, WorkloadArgs};
use crate::error::{exit, Error, Result};
use crate::gpu::Gpu;
use crate::result::tenant::{TenantReport, TreeDecision};
use crate::result::{histogram, LaneResult, SharingEvidence, SharingVerdict};
use crate::tenant::protocol::env;
use crate::tenant::session::{Finished, Session, Settings as SessionSettings};
use crate::tenant::supervise::Tenant;
use crate::tenant::window::Window;
use crate::{host, units};
use std::path::PathBuf;
use std::time::Duration;

/// The window when neither --duration nor a scenario sets one.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(20);

/// Who a command is in its run.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub index: u32,
    pub workers: u32,
    pub run_id: &'a str,
    pub mode: &'a str,
    pub group: Option<&'a str>,
}

/// What a command is told (`tenant::protocol::env`): who it is and what to do; its pipe directory is added by
/// whoever starts it.
pub fn command_env(who: Identity, window: Duration, workload: &WorkloadArgs) -> Vec<(String, String)> {
    let mut vars = vec![
        (env::WORKER_INDEX, who.index.to_string()),
        (env::WORKERS, who.workers.to_string()),
        (env::RUN_ID, who.run_id.to_string()),
        (env::MODE, who.mode.to_string()),
        (env::DURATION_S, format!("{}", window.as_secs_f64())),
        (env::SEED, workload.seed.wrapping_add(who.index as u64).to_string()),
    ];
    match workload.rate {
        Some(rate) => {
            vars.push((env::RATE, rate.to_string()));
            vars.push((env::ARRIVALS, format!("{:?}", workload.arrivals).to_lowercase()));
        }
        None => vars.push((env::ARRIVALS, "closed".into())),
    }
    if let Some(group) = who.group {
        vars.push((env::GROUP, group.to_string()));
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// How the command is run.
pub struct CommandSettings {
    pub mode: Mode,
    pub control: MpsControlArgs,
    pub gpu: u32,
    pub command: Vec<String>,
    pub session: SessionSettings,
    /// What the command is told besides the pipe directory (`tenant::protocol::env`).
    pub env: Vec<(String, String)>,
}

/// The command workload, from its start to its report.
pub struct Command {
    settings: CommandSettings,
    pipe_dir: PathBuf,
    own_sharing: Option<SharingEvidence>,
    session: Option<Session>,
    gpu_name: String,
}

impl Command {
    pub fn new(settings: CommandSettings) -> Command {
        let (pipe_dir, _) = crate::mps::check::context_pipe_dir();
        Command { settings, pipe_dir, own_sharing: None, session: None, gpu_name: String::new() }
    }

    /// The command's mode as its worker must prove it; `None` when unverified.
    fn verify_command(&self, tenant: &Tenant) -> Option<TreeDecision> {
        let expect_mps = match self.settings.mode {
            Mode::Mps => true,
            Mode::Timeslice => false,
            Mode::Streams | Mode::Unverified => return None,
        };
        Some(crate::tenant::verify(tenant.pid(), &self.pipe_dir, &self.settings.control, expect_mps))
    }
}

impl Workload for Command {
    fn prepare(&mut self) -> Result<Prepared> {
        // The worker's own context is released at the end of this block, before the command starts, so that the
        // daemon's client rows from this PID namespace can only be the command's.
        let (gpu, own_sharing) = {
            let gpu = Gpu::open(self.settings.gpu)?;
            let (sharing, memory) = mode::verify_mode(self.settings.mode, &self.settings.control, &gpu)?;
            // The command's processes get the same limit, each its own: the worker's view stands for theirs.
            let identity = crate::result::GpuIdentity { context_memory: memory, ..gpu.identity().clone() };
            (identity, sharing)
        };
        self.gpu_name = gpu.name.clone();
        let mut env = self.settings.env.clone();
        env.push(("CUDA_MPS_PIPE_DIRECTORY".into(), self.pipe_dir.display().to_string()));
        let mut session = Session::start(&self.settings.command, &env, self.settings.session, &std::env::temp_dir())?;
        let ready = session.until_ready();
        if ready {
            let at_ready = self.verify_command(session.tenant());
            if let Some(refused) = at_ready.as_ref().and_then(refusal) {
                session.stop();
                return Err(refused);
            }
            session.report.membership_at_ready = at_ready;
        }
        self.session = Some(session);
        self.own_sharing = Some(own_sharing.clone());
        Ok(Prepared { gpu, sharing: own_sharing, shape: None, sync: None, ready })
    }

    fn measure(&mut self, start_unix_ns: u64) -> Result<u64> {
        let window_len = self.settings.session.window;
        let window = Window { start_unix_ns, end_unix_ns: start_unix_ns + window_len.as_nanos() as u64 };
        let Some(mut session) = self.session.take() else { return Ok(host::unix_now_ns()) };
        let went_through = session.measure(window)?;
        let ended = host::unix_now_ns().min(window.end_unix_ns);
        if went_through {
            session.report.membership_at_end = self.verify_command(session.tenant());
        }
        self.session = Some(session);
        Ok(ended)
    }

    fn finish(mut self: Box<Self>, worker: u32) -> Result<Measured> {
        let session = self.session.take().ok_or_else(|| Error::new("the command was never started"))?;
        let Finished { report, lane, mut problems } = session.finish(worker)?;
        if let Some(end) = report.membership_at_end.as_ref().filter(|d| !d.as_expected && !d.gpu_processes.is_empty()) {
            problems.push(format!("at the window's end the command was not in its mode: {}", end.text));
        }
        let own = self.own_sharing.take().unwrap_or_else(mode::unverified);
        let sharing = command_sharing(own, &report.membership_at_ready, &report.membership_at_end);
        let summary = vec![summarize(self.settings.mode, &self.gpu_name, &report, &lane)];
        Ok(Measured {
            lanes: vec![lane],
            tenant: Some(report),
            sharing: Some(sharing),
            problems,
            summary,
            memory: None,
        })
    }
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

/// One line with what was measured.
fn summarize(mode: Mode, gpu: &str, report: &TenantReport, lane: &LaneResult) -> String {
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
    format!(
        "{} worker {} on {gpu}: command {} ({}) | {figures}",
        mode.label(),
        lane.worker,
        report.ending,
        report.exit_status.as_deref().unwrap_or("?")
    )
}
