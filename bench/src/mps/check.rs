//! The MPS "dial tone": pipe directory, control daemon, environment, and membership of this process's CUDA
//! context, each reported as a step with what was observed, the likely cause and the fix.
//!
//! `diagnose` is pure: it turns observations into steps, a verdict and an exit code, so every failure path is
//! unit-tested. `run_check` gathers the observations (file system, control client, GPU through a probe).

use super::control::{ControlClient, Invocation};
use super::observe::{EnvironmentObservation, PipeDirObservation};
use super::parse::{self, ClientRow, ControlAnswer};
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub probe: ContextProbe,
    pub ps_after_context: Invocation,
    pub answer: ControlAnswer,
    /// This process's row in `ps`, if found.
    pub row: Option<ClientRow>,
    /// `pid+namespace`, or `pid` on drivers that print no NAMESPACE column.
    pub matched_by: Option<String>,
    /// Whether this pid is in `get_device_client_list` too (corroboration; pids there carry no namespace).
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

/// Finds this process in the client table by (pid, PID namespace), or by pid alone when no namespace is shown.
pub fn find_self(rows: &[ClientRow], pid: u32, pid_namespace: Option<u64>) -> Option<(ClientRow, &'static str)> {
    rows.iter().find_map(|row| match (row.pid_namespace, pid_namespace) {
        (Some(theirs), Some(ours)) => (row.pid == pid && theirs == ours).then(|| (row.clone(), "pid+namespace")),
        _ => (row.pid == pid).then(|| (row.clone(), "pid")),
    })
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
        step.status = StepStatus::Warn;
        step.summary += &format!("; pid file names {pid}, which is not running in this PID namespace (stale, or the daemon runs outside this namespace)");
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
    match (&m.row, o.expect) {
        (Some(row), Expectation::Mps) => Step::new(
            name,
            StepStatus::Ok,
            format!(
                "joined: pid {} (matched by {}) is context {} of MPS server {} on {}; {sms}",
                row.pid,
                m.matched_by.as_deref().unwrap_or("pid"),
                row.context_id.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                row.server_pid.map(|c| c.to_string()).unwrap_or_else(|| "?".into()),
                row.device.as_deref().unwrap_or("?")
            ),
        ),
        (Some(row), Expectation::Timeslice) => Step::new(name, StepStatus::Fail, format!("this process (pid {}) IS an MPS client; {sms}", row.pid))
            .because("an MPS daemon serves this pipe directory, so every CUDA context here joins it", "for time-slicing, run with CUDA_MPS_PIPE_DIRECTORY pointing at an empty directory, or stop the daemon"),
        (None, Expectation::Timeslice) => Step::new(name, StepStatus::Ok, format!("not an MPS client (time-slicing); {sms}")),
        (None, Expectation::Mps) => Step::new(name, StepStatus::Fail, format!("NOT joined: the daemon answers, but this process is not among its clients; {sms}")).because(
            "silent fallback to time-slicing: the CUDA context did not connect to this daemon (a different CUDA_MPS_PIPE_DIRECTORY in this process, a pipe directory mounted from another node path, or a daemon of another user)",
            format!("make CUDA_MPS_PIPE_DIRECTORY of the workload equal the daemon's ({}) and run as the daemon's user", o.pipe_dir.path),
        ),
    }
}

/// Turns observations into steps, a verdict and an exit code.
pub fn diagnose(o: Observations) -> CheckReport {
    let steps = vec![pipe_dir_step(&o), control_step(&o), environment_step(&o), membership_step(&o)];
    let no_daemon = matches!(o.answer, Some(ControlAnswer::NoDaemon)) || (!o.pipe_dir.exists && o.answer.is_none());
    let verdict = match (&o.membership, no_daemon) {
        (Some(m), _) if m.row.is_some() => SharingVerdict::MpsJoined,
        (Some(_), _) => SharingVerdict::MpsNotJoined,
        (None, true) => SharingVerdict::NoDaemon,
        (None, false) => SharingVerdict::Unverified,
    };
    let broken = steps[..2].iter().any(|s| s.status == StepStatus::Fail);
    let (healthy, exit_code) = match (o.expect, verdict) {
        (Expectation::Mps, SharingVerdict::MpsJoined) => (true, exit::OK),
        (Expectation::Mps, SharingVerdict::MpsNotJoined) => (false, exit::NOT_JOINED),
        (Expectation::Mps, SharingVerdict::NoDaemon) => (false, exit::MPS_BROKEN),
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
    let (mut membership, mut membership_skipped) = (None, None);
    match (&client, daemon_answers(&answer)) {
        (Some(c), true) => match probe() {
            Ok(probe) => {
                // The server may list a new client a moment after its first kernel: ask again for a while.
                let deadline = std::time::Instant::now() + MEMBERSHIP_WAIT;
                let (ps_after_context, answer, found) = loop {
                    let ps = c.query("ps");
                    let answer = match &ps {
                        Invocation::Answered { output, .. } => parse::parse_ps(output),
                        Invocation::TimedOut { .. } | Invocation::NotStarted { .. } => {
                            ControlAnswer::Other { text: "no answer".into() }
                        }
                    };
                    let found = match &answer {
                        ControlAnswer::Clients { rows } => find_self(rows, environment.pid, environment.pid_namespace),
                        _ => None,
                    };
                    if found.is_some() || std::time::Instant::now() >= deadline {
                        break (ps, answer, found);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                let (row, matched_by) = match found {
                    Some((row, by)) => (Some(row), Some(by.to_string())),
                    None => (None, None),
                };
                let in_device_client_list = match c.query("get_device_client_list") {
                    Invocation::Answered { output, .. } => {
                        parse::parse_device_client_list(&output).ok().map(|pids| pids.contains(&environment.pid))
                    }
                    _ => None,
                };
                membership =
                    Some(Membership { probe, ps_after_context, answer, row, matched_by, in_device_client_list });
            }
            Err(e) => membership_skipped = Some(format!("could not create a CUDA context: {}", e.problem)),
        },
        _ => membership_skipped = Some("no daemon answered, so there is nothing to join".into()),
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
    })
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
