//! The MPS "dial tone": pipe directory, control daemon, environment, and membership of this process's CUDA
//! context, each reported as a step with what was observed, the likely cause and the fix.
//!
//! `diagnose` is pure: it turns observations into steps, a verdict and an exit code, so every failure path is
//! unit-tested. `run_check` gathers the observations (file system, control client, GPU through a probe).

use super::control::{ControlClient, Invocation};
use super::membership::{self, Decision, NotJoined, Proof};
use super::observe::{EnvironmentObservation, PipeDirObservation};
use super::parse::{self, ControlAnswer};
use crate::error::{exit, Error};
use crate::result::SharingVerdict;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long membership is looked for after the context's first kernel.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(3);

/// The sharing mode the caller expects to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    Mps,
    Timeslice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Info,
    Warn,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub status: StepStatus,
    pub summary: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
}

impl Step {
    fn new(name: &'static str, status: StepStatus, summary: impl Into<String>) -> Step {
        Step { name, status, summary: summary.into(), cause: None, fix: None }
    }
    fn because(mut self, cause: impl Into<String>, fix: impl Into<String>) -> Step {
        self.cause = Some(cause.into());
        self.fix = Some(fix.into());
        self
    }
}

/// What the GPU side of the check saw after creating a context and running one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextProbe {
    pub gpu_uuid: String,
    pub device_sm_count: u32,
    pub context_sm_count: u32,
    /// `cuDeviceGetExecAffinitySupport(SM_COUNT)` after the context exists: 1 only in MPS clients (`None`: the
    /// query failed, or the GPU predates Volta and has no SM affinity at all).
    pub exec_affinity_supported: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub probe: ContextProbe,
    pub ps_after_context: Invocation,
    pub answer: ControlAnswer,
    pub evidence: membership::Evidence,
    pub decision: Decision,
    /// How membership was proven ([`Proof::label`]); `None` unless joined.
    pub proof: Option<String>,
    /// Whether this pid is in `get_device_client_list` too (corroboration, asked only where the daemon shares
    /// this PID namespace: the list's pids are the daemon's).
    pub in_device_client_list: Option<bool>,
}

/// Everything the check observed; `diagnose` reads only this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observations {
    pub expect: Expectation,
    pub pipe_dir: PipeDirObservation,
    /// The pipe directory this process's own CUDA contexts use (its environment, or the default).
    pub context_pipe_dir: String,
    pub control_program: Option<String>,
    pub timeout_ms: u64,
    pub ps: Option<Invocation>,
    pub answer: Option<ControlAnswer>,
    pub server_pids: Option<Vec<u32>>,
    pub environment: EnvironmentObservation,
    pub membership: Option<Membership>,
    /// Why membership was not checked, when it was not.
    pub membership_skipped: Option<String>,
    /// Whether a CUDA context of this process ran a kernel where no daemon answered (`None`: not tried, as
    /// when membership was checked, which runs one): time-slicing is verified only on a GPU that works.
    #[serde(default)]
    pub context_ran: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub verdict: SharingVerdict,
    pub verdict_label: String,
    /// The verdict is what was expected.
    pub healthy: bool,
    pub exit_code: i32,
    pub steps: Vec<Step>,
    pub observations: Observations,
}

fn daemon_answers(answer: &Option<ControlAnswer>) -> bool {
    matches!(answer, Some(ControlAnswer::NoServer | ControlAnswer::Clients { .. }))
}

const START_DAEMON: &str = "start it: CUDA_MPS_PIPE_DIRECTORY=<dir> CUDA_MPS_LOG_DIRECTORY=<logdir> nvidia-cuda-mps-control -d (or `sharebench compare`, which starts a private one)";

fn pipe_dir_step(o: &Observations) -> Step {
    let p = &o.pipe_dir;
    let name = "pipe directory";
    let at = format!("{} ({})", p.path, p.source);
    let expecting_mps = o.expect == Expectation::Mps;
    let fail = if expecting_mps { StepStatus::Fail } else { StepStatus::Info };
    if !p.exists {
        return Step::new(name, fail, format!("{at} does not exist")).because(
            "no MPS control daemon was started with this pipe directory, or (in a Pod) the volume holding it is not mounted here",
            format!("{START_DAEMON}; in Kubernetes mount the node's pipe directory at {} or set CUDA_MPS_PIPE_DIRECTORY to where it is mounted", p.path),
        );
    }
    if !p.is_dir {
        return Step::new(name, StepStatus::Fail, format!("{at} exists but is not a directory")).because(
            "a file is in the pipe directory's place",
            "remove it, or point CUDA_MPS_PIPE_DIRECTORY at the daemon's directory",
        );
    }
    if !p.accessible {
        let owner = p.owner_uid.map(|u| u.to_string()).unwrap_or_else(|| "?".into());
        return Step::new(name, StepStatus::Fail, format!("{at} is not accessible to uid {} (owner uid {owner}, mode {:o})", o.environment.uid, p.mode.unwrap_or(0)))
            .because(
                "the daemon was started by another user and its pipe directory is private to that user",
                format!("run the workload as uid {owner} (MPS serves one user at a time), or start the daemon so that this user can reach its pipe directory"),
            );
    }
    if !p.control_socket {
        let entries = if p.entries.is_empty() { "empty".to_string() } else { p.entries.join(", ") };
        return Step::new(name, fail, format!("{at} holds no control socket ({entries})")).because(
            "the daemon is not running with this pipe directory: an empty directory means it never started here, or the Pod mounted the wrong node path",
            START_DAEMON,
        );
    }
    let mut step = Step::new(name, StepStatus::Ok, format!("{at}: control socket present ({})", p.entries.join(", ")));
    if let (Some(pid), Some(false)) = (p.daemon_pid, p.daemon_pid_running) {
        if daemon_answers(&o.answer) {
            step.summary += &format!("; pid file names {pid}, not a process of this PID namespace: the daemon runs in another one (as for any Pod without hostPID)");
        } else {
            step.status = StepStatus::Warn;
            step.summary += &format!("; pid file names {pid}, which is not running in this PID namespace (stale, or the daemon runs outside this namespace)");
        }
    }
    step
}

fn control_step(o: &Observations) -> Step {
    let name = "control daemon";
    let expecting_mps = o.expect == Expectation::Mps;
    let fail = if expecting_mps { StepStatus::Fail } else { StepStatus::Info };
    let Some(program) = &o.control_program else {
        return Step::new(name, fail, "nvidia-cuda-mps-control not found on PATH").because(
            "the driver's utilities are not installed here (in a container they come from the node)",
            "install the NVIDIA driver utilities; in a container set NVIDIA_DRIVER_CAPABILITIES=compute,utility; or pass --mps-control PATH",
        );
    };
    match (&o.ps, &o.answer) {
        (Some(Invocation::TimedOut { after_ms }), _) => Step::new(name, StepStatus::Fail, format!("`echo ps | {program}` gave no answer within {after_ms} ms: hung")).because(
            "the daemon or the pipe directory's mount is hung (seen with broken mounts and older drivers)",
            "restart the daemon on the node (echo quit | nvidia-cuda-mps-control; nvidia-cuda-mps-control -d) and check the mount of the pipe directory",
        ),
        (Some(Invocation::NotStarted { reason }), _) => Step::new(name, StepStatus::Fail, format!("could not run the control client: {reason}"))
            .because("the control client is not executable by this user", "check its permissions, or pass --mps-control PATH"),
        (_, Some(ControlAnswer::NoServer)) => Step::new(name, StepStatus::Ok, "daemon answers `ps`: Server not found (healthy, no client has connected yet)"),
        (_, Some(ControlAnswer::Clients { rows })) => {
            let servers = o.server_pids.as_ref().map(|s| format!("; servers {s:?}")).unwrap_or_default();
            Step::new(name, StepStatus::Ok, format!("daemon answers `ps`: {} client(s){servers}", rows.len()))
        }
        (_, Some(ControlAnswer::NoDaemon)) if !expecting_mps => Step::new(name, StepStatus::Ok, "no MPS control daemon reachable: contexts here use time-slicing"),
        (_, Some(ControlAnswer::NoDaemon)) if o.pipe_dir.control_socket => Step::new(name, StepStatus::Fail, "`Cannot find MPS control daemon process`, yet the control socket exists: a stale socket")
            .because(
                "the daemon died (or was killed) and left its files behind; a socket file proves nothing",
                format!("restart the daemon with the same pipe directory; {START_DAEMON}"),
            ),
        (_, Some(ControlAnswer::NoDaemon)) => Step::new(name, StepStatus::Fail, "`Cannot find MPS control daemon process`")
            .because("no daemon listens on this pipe directory, or it belongs to another user", START_DAEMON),
        (_, Some(ControlAnswer::ConnectionRefused)) => Step::new(name, StepStatus::Fail, "`Connection refused`: a socket without a daemon")
            .because("the daemon is gone and its socket is stale", "restart the daemon with the same pipe directory"),
        (_, Some(ControlAnswer::TransportNotConnected)) => Step::new(name, StepStatus::Fail, "`Transport endpoint is not connected`")
            .because("the pipe directory's mount is broken (a stale bind mount or a dead FUSE/host path)", "remount the pipe directory (restart the Pod) after restarting the daemon on the node"),
        (_, Some(ControlAnswer::Other { text })) => Step::new(name, StepStatus::Fail, format!("unexpected answer to `ps`: {text:?}"))
            .because("this driver's control client prints something sharebench does not know", "check the daemon by hand: echo ps | nvidia-cuda-mps-control; and report the text"),
        (_, None) => Step::new(name, StepStatus::Skipped, "not queried"),
    }
}

fn environment_step(o: &Observations) -> Step {
    let e = &o.environment;
    let ns = |n: Option<u64>| n.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    let shm = match &e.dev_shm {
        Some(m) => format!(
            "{} ({}, {})",
            m.fs_type,
            m.source,
            m.size_bytes.map(|b| format!("{} MiB", b >> 20)).unwrap_or_else(|| "size ?".into())
        ),
        None => "not a separate mount".into(),
    };
    let vars = if e.mps_variables.is_empty() {
        "none".to_string()
    } else {
        e.mps_variables.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
    };
    let mut step = Step::new(
        "environment",
        StepStatus::Info,
        format!(
            "uid {}, pid {} in PID namespace {}, IPC namespace {}, /dev/shm {shm}, CUDA_MPS_*: {vars}",
            e.uid,
            e.pid,
            ns(e.pid_namespace),
            ns(e.ipc_namespace)
        ),
    );
    if let Some(m) = &o.membership {
        match m.evidence.daemon_in_this_pid_namespace {
            Some(true) => step.summary += "; the MPS daemon runs in this PID namespace",
            Some(false) => {
                step.summary += "; the MPS daemon runs in another PID namespace, so its client table shows this \
                                 process under the daemon's pid for it, not under its own"
            }
            None => {}
        }
    }
    if o.context_pipe_dir != o.pipe_dir.path {
        step.status = StepStatus::Warn;
        step.summary += &format!(
            "; this process's CUDA contexts use pipe directory {}, not the {} checked",
            o.context_pipe_dir, o.pipe_dir.path
        );
    }
    step
}

fn membership_step(o: &Observations) -> Step {
    let name = "membership";
    let Some(m) = &o.membership else {
        return Step::new(
            name,
            StepStatus::Skipped,
            o.membership_skipped.clone().unwrap_or_else(|| "not checked".into()),
        );
    };
    let sms = format!("context sees {} of {} SMs", m.probe.context_sm_count, m.probe.device_sm_count);
    let ns = m.evidence.pid_namespace.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    match (&m.decision, o.expect) {
        (Decision::Joined { proof, row, namespace_rows }, Expectation::Mps) => {
            Step::new(name, StepStatus::Ok, format!("joined: {}; {sms}", proof_text(*proof, row, *namespace_rows, &ns)))
        }
        (Decision::Joined { proof, row, namespace_rows }, Expectation::Timeslice) => Step::new(
            name,
            StepStatus::Fail,
            format!("this process IS an MPS client ({}); {sms}", proof_text(*proof, row, *namespace_rows, &ns)),
        )
        .because(
            "an MPS daemon serves this pipe directory, so every CUDA context here joins it",
            "for time-slicing, run with CUDA_MPS_PIPE_DIRECTORY pointing at an empty directory, or stop the daemon",
        ),
        (Decision::NotJoined { .. }, Expectation::Timeslice) => {
            Step::new(name, StepStatus::Ok, format!("not an MPS client (time-slicing); {sms}"))
        }
        (Decision::NotJoined { why, namespace_rows }, Expectation::Mps) => {
            not_joined_step(o, *why, *namespace_rows, &sms)
        }
        (Decision::Undecided { seen }, _) => {
            Step::new(name, StepStatus::Fail, format!("could not tell: {seen}; {sms}")).because(
                "the evidence fits this process being a client and it not being one",
                "run the check as the only GPU process of its PID namespace (e.g. in its own container), or compare \
                 `echo ps | nvidia-cuda-mps-control` on the node with this process's node pid",
            )
        }
    }
}

/// What proved membership, in words.
fn proof_text(proof: Proof, row: &Option<parse::ClientRow>, namespace_rows: usize, ns: &str) -> String {
    let row_text = |r: &parse::ClientRow| {
        format!(
            "context {} of MPS server {} on {}",
            r.context_id.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
            r.server_pid.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
            r.device.as_deref().unwrap_or("?")
        )
    };
    match (proof, row) {
        (Proof::PidAndNamespace | Proof::Pid, Some(r)) => {
            format!("pid {} (matched by {}) is {}", r.pid, proof.label(), row_text(r))
        }
        (Proof::ExecAffinityAndNamespace, Some(r)) => format!(
            "an MPS client by execution affinity (which only MPS clients have), through the daemon's pipe directory, \
             listed as node pid {} from PID namespace {ns}: {} (proof: {})",
            r.pid,
            row_text(r),
            proof.label()
        ),
        (Proof::ExecAffinityAndNamespace, None) => format!(
            "an MPS client by execution affinity (which only MPS clients have), through the daemon's pipe directory; \
             the daemon lists {namespace_rows} clients from PID namespace {ns}, one of them this process (proof: {})",
            proof.label()
        ),
        (Proof::OnlyClientInNamespace, Some(r)) => format!(
            "the only client from PID namespace {ns} (node pid {}) and the only GPU process in it: {} (proof: {})",
            r.pid,
            row_text(r),
            proof.label()
        ),
        (_, _) => format!("proof: {}", proof.label()),
    }
}

fn not_joined_step(o: &Observations, why: NotJoined, namespace_rows: usize, sms: &str) -> Step {
    let name = "membership";
    let elsewhere = o.membership.as_ref().is_some_and(|m| m.evidence.daemon_in_this_pid_namespace == Some(false));
    let where_ = if elsewhere {
        "the daemon (in another PID namespace) lists no client from this process's PID namespace"
    } else {
        "the daemon answers, but this process is not among its clients"
    };
    match why {
        NotJoined::NoClientRow => Step::new(name, StepStatus::Fail, format!("NOT joined: {where_}; {sms}")).because(
            "silent fallback to time-slicing: the CUDA context did not connect to this daemon (a different CUDA_MPS_PIPE_DIRECTORY in this process, a pipe directory mounted from another node path, or a daemon of another user)",
            format!("make CUDA_MPS_PIPE_DIRECTORY of the workload equal the daemon's ({}) and run as the daemon's user", o.pipe_dir.path),
        ),
        NotJoined::ClientOfAnotherDaemon => Step::new(
            name,
            StepStatus::Fail,
            format!("NOT joined to this daemon: this process is an MPS client through pipe directory {}, not {}; {sms}", o.context_pipe_dir, o.pipe_dir.path),
        )
        .because(
            "another MPS daemon serves the pipe directory this process's contexts use",
            format!("check that daemon (CUDA_MPS_PIPE_DIRECTORY={} sharebench check), or give the workload CUDA_MPS_PIPE_DIRECTORY={}", o.context_pipe_dir, o.pipe_dir.path),
        ),
        NotJoined::OthersInNamespaceJoined => Step::new(
            name,
            StepStatus::Fail,
            format!("NOT joined: {namespace_rows} client(s) from this PID namespace are other processes; this one is no MPS client (no execution affinity); {sms}"),
        )
        .because(
            "other processes of this container or Pod joined MPS, this one fell back to time-slicing: its environment differs from theirs",
            "give this process the same CUDA_MPS_PIPE_DIRECTORY (and user) as the processes that joined",
        ),
    }
}

/// Turns observations into steps, a verdict and an exit code.
pub fn diagnose(o: Observations) -> CheckReport {
    let steps = vec![pipe_dir_step(&o), control_step(&o), environment_step(&o), membership_step(&o)];
    let no_daemon = matches!(o.answer, Some(ControlAnswer::NoDaemon)) || (!o.pipe_dir.exists && o.answer.is_none());
    let verdict = match (&o.membership, no_daemon) {
        (Some(m), _) => match m.decision {
            Decision::Joined { .. } => SharingVerdict::MpsJoined,
            Decision::NotJoined { .. } => SharingVerdict::MpsNotJoined,
            Decision::Undecided { .. } => SharingVerdict::Unverified,
        },
        (None, true) => SharingVerdict::NoDaemon,
        (None, false) => SharingVerdict::Unverified,
    };
    let broken = steps[..2].iter().any(|s| s.status == StepStatus::Fail);
    let (healthy, exit_code) = match (o.expect, verdict) {
        (Expectation::Mps, SharingVerdict::MpsJoined) => (true, exit::OK),
        (Expectation::Mps, SharingVerdict::MpsNotJoined) => (false, exit::NOT_JOINED),
        (Expectation::Mps, SharingVerdict::NoDaemon) => (false, exit::MPS_BROKEN),
        // With no daemon, time-slicing is verified only if a context ran: on a machine without a GPU or driver a
        // probe must not pass.
        (Expectation::Timeslice, SharingVerdict::NoDaemon) if o.context_ran == Some(false) => (false, exit::ERROR),
        (Expectation::Timeslice, SharingVerdict::NoDaemon | SharingVerdict::MpsNotJoined) => (true, exit::OK),
        (Expectation::Timeslice, SharingVerdict::MpsJoined) => (false, exit::NOT_JOINED),
        (_, SharingVerdict::Unverified) if broken => (false, exit::MPS_BROKEN),
        (_, SharingVerdict::Unverified) => (false, exit::ERROR),
    };
    CheckReport { verdict, verdict_label: verdict.label().to_string(), healthy, exit_code, steps, observations: o }
}

/// How to run the check.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    pub expect: Expectation,
    pub pipe_dir: PathBuf,
    pub pipe_dir_source: String,
    pub control_program: Option<PathBuf>,
    pub timeout: Duration,
}

impl CheckSettings {
    /// The pipe directory from `--pipe-dir`, else `CUDA_MPS_PIPE_DIRECTORY`, else the default.
    pub fn new(
        expect: Expectation,
        pipe_dir: Option<PathBuf>,
        control_program: Option<PathBuf>,
        timeout: Duration,
    ) -> CheckSettings {
        let (pipe_dir, pipe_dir_source) = match pipe_dir {
            Some(p) => (p, "--pipe-dir".to_string()),
            None => context_pipe_dir(),
        };
        CheckSettings { expect, pipe_dir, pipe_dir_source, control_program, timeout }
    }
}

/// The pipe directory CUDA contexts of this process use, and where that came from.
pub fn context_pipe_dir() -> (PathBuf, String) {
    match std::env::var_os("CUDA_MPS_PIPE_DIRECTORY").filter(|v| !v.is_empty()) {
        Some(p) => (PathBuf::from(p), "CUDA_MPS_PIPE_DIRECTORY".to_string()),
        None => (PathBuf::from(super::observe::DEFAULT_PIPE_DIR), "default".to_string()),
    }
}

/// Gathers the observations and diagnoses them. `probe` creates this process's CUDA context, runs a kernel in
/// it and reports what the context sees; it is called only when a daemon answers (otherwise nothing can join).
pub fn run_check(settings: &CheckSettings, probe: impl FnOnce() -> Result<ContextProbe, Error>) -> CheckReport {
    let pipe_dir = super::observe::observe_pipe_dir(&settings.pipe_dir, &settings.pipe_dir_source);
    let program = super::control::locate(settings.control_program.as_deref());
    let client = program.clone().map(|program| ControlClient {
        program,
        pipe_dir: settings.pipe_dir.clone(),
        timeout: settings.timeout,
    });
    let ps = client.as_ref().map(|c| c.query("ps"));
    let answer = match &ps {
        Some(Invocation::Answered { output, .. }) => Some(parse::parse_ps(output)),
        _ => None,
    };
    let server_pids = match (&client, daemon_answers(&answer)) {
        (Some(c), true) => match c.query("get_server_list") {
            Invocation::Answered { output, .. } => parse::parse_server_list(&output).ok(),
            _ => None,
        },
        _ => None,
    };
    let environment = super::observe::observe_environment();
    let (mut membership, mut membership_skipped, mut context_ran) = (None, None, None);
    match (&client, daemon_answers(&answer)) {
        (Some(c), true) => match probe() {
            Ok(probe) => {
                membership = Some(observe_membership(c, probe, &environment, &pipe_dir, server_pids.as_deref()))
            }
            Err(e) => membership_skipped = Some(format!("could not create a CUDA context: {}", e.problem)),
        },
        _ => {
            // Nothing to join; but "time-slicing" is an answer only where a CUDA context really runs.
            let ran = probe();
            membership_skipped = Some(match &ran {
                Ok(_) => {
                    "no daemon answered, so there is nothing to join (a CUDA context ran a kernel: time-slicing)".into()
                }
                Err(e) => format!("no daemon answered, and no CUDA context could run: {}", e.problem),
            });
            context_ran = Some(ran.is_ok());
        }
    }
    diagnose(Observations {
        expect: settings.expect,
        pipe_dir,
        context_pipe_dir: context_pipe_dir().0.display().to_string(),
        control_program: program.map(|p| p.display().to_string()),
        timeout_ms: settings.timeout.as_millis() as u64,
        ps,
        answer,
        server_pids,
        environment,
        membership,
        membership_skipped,
        context_ran,
    })
}

/// Asks the daemon for its clients after this process's first kernel and decides membership. The server may
/// list a new client a moment after that kernel, so `ps` is asked again until joined or [`MEMBERSHIP_WAIT`].
fn observe_membership(
    client: &ControlClient,
    probe: ContextProbe,
    environment: &super::observe::EnvironmentObservation,
    pipe_dir: &PipeDirObservation,
    server_pids: Option<&[u32]>,
) -> Membership {
    let daemon_pids: Vec<u32> =
        pipe_dir.daemon_pid.into_iter().chain(server_pids.unwrap_or_default().iter().copied()).collect();
    let daemon_in_this_pid_namespace = super::observe::daemon_in_this_pid_namespace(&daemon_pids);
    let evidence = membership::Evidence {
        pid: environment.pid,
        pid_namespace: environment.pid_namespace,
        daemon_in_this_pid_namespace,
        exec_affinity_supported: probe.exec_affinity_supported,
        same_pipe_dir: same_directory(&context_pipe_dir().0, std::path::Path::new(&pipe_dir.path)),
        other_gpu_processes: match daemon_in_this_pid_namespace {
            Some(true) => None,
            _ => super::observe::other_gpu_processes(),
        },
    };
    let deadline = std::time::Instant::now() + MEMBERSHIP_WAIT;
    let (ps_after_context, answer, decision) = loop {
        let ps = client.query("ps");
        let answer = match &ps {
            Invocation::Answered { output, .. } => parse::parse_ps(output),
            Invocation::TimedOut { .. } | Invocation::NotStarted { .. } => {
                ControlAnswer::Other { text: "no answer".into() }
            }
        };
        let rows = match &answer {
            ControlAnswer::Clients { rows } => rows.as_slice(),
            _ => &[],
        };
        let decision = membership::decide(rows, &evidence);
        if decision.joined() || std::time::Instant::now() >= deadline {
            break (ps, answer, decision);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let in_device_client_list = match (daemon_in_this_pid_namespace, client.query("get_device_client_list")) {
        (Some(true), Invocation::Answered { output, .. }) => {
            parse::parse_device_client_list(&output).ok().map(|pids| pids.contains(&environment.pid))
        }
        _ => None,
    };
    let proof = match &decision {
        Decision::Joined { proof, .. } => Some(proof.label().to_string()),
        _ => None,
    };
    Membership { probe, ps_after_context, answer, evidence, decision, proof, in_device_client_list }
}

/// Whether two paths name one directory (after resolving links; as written where they cannot be resolved).
fn same_directory(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The report as a person reads it.
pub fn render(report: &CheckReport) -> String {
    let expect = match report.observations.expect {
        Expectation::Mps => "mps",
        Expectation::Timeslice => "timeslice",
    };
    let mut out = format!("sharebench check (expecting {expect})\n");
    for s in &report.steps {
        let tag = match s.status {
            StepStatus::Ok => " ok ",
            StepStatus::Info => "info",
            StepStatus::Warn => "warn",
            StepStatus::Fail => "FAIL",
            StepStatus::Skipped => "skip",
        };
        out += &format!("  [{tag}] {:<15} {}\n", s.name, s.summary);
        if let Some(cause) = &s.cause {
            out += &format!("         {:<15} cause: {cause}\n", "");
        }
        if let Some(fix) = &s.fix {
            out += &format!("         {:<15} fix:   {fix}\n", "");
        }
    }
    out += &format!("verdict: {}\n", report.verdict_label);
    out
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
