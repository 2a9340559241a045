//! Each step of the check from the observations: what was seen, what it means, and the fix. Pure.

use super::*;
use crate::result::memory::{ContextMemory, LimitSource};

const START_DAEMON: &str = "start it: CUDA_MPS_PIPE_DIRECTORY=<dir> CUDA_MPS_LOG_DIRECTORY=<logdir> nvidia-cuda-mps-control -d (or `sharebench compare`, which starts a private one)";

pub(super) fn pipe_dir_step(o: &Observations) -> Step {
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

pub(super) fn control_step(o: &Observations) -> Step {
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

pub(super) fn environment_step(o: &Observations) -> Step {
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

pub(super) fn membership_step(o: &Observations) -> Step {
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

/// What the context may use of its device's memory: free and total as it saw them, the MPS limit in force and
/// its source (`mps::memory`). A malformed limit, or one set where nothing enforces it, is a warning.
pub(super) fn memory_step(o: &Observations, mps_client: bool) -> (Step, Option<ContextMemory>) {
    use crate::mps::memory::{self, LIMIT_ENV};
    let name = "memory";
    let Some(seen) = &o.memory_seen else {
        return (Step::new(name, StepStatus::Skipped, "no CUDA context was made: its memory was not read"), None);
    };
    let env = o.environment.mps_variables.get(LIMIT_ENV).map(String::as_str);
    let parsed = env.map(|v| memory::limit_from_env(v, seen.ordinal, &seen.uuid));
    let daemon = o.daemon_memory_limit.as_deref().and_then(|a| memory::limit_from_daemon(a).map(|b| (a, b)));
    let env_limit = match (env, &parsed) {
        (Some(v), Some(Ok(limit))) => Some((v, *limit)),
        _ => None,
    };
    let m = memory::resolve((seen.free_bytes, seen.total_bytes), mps_client, env_limit, daemon);
    let summary = memory::describe(&m, None);
    let step = match (&parsed, m.limit_source) {
        (Some(Err(why)), _) => Step::new(name, StepStatus::Warn, summary)
            .because(why.clone(), format!("write it as <device>=<limit>[,...], e.g. {LIMIT_ENV}=0=8G")),
        (Some(Ok(_)), LimitSource::NotEnforced) => Step::new(name, StepStatus::Warn, summary).because(
            "a pinned memory limit is MPS's; under time-slicing every process may allocate what is free",
            "to bound a tenant's memory, share the GPU through MPS with this limit (or give it a MIG instance)",
        ),
        _ => Step::new(name, StepStatus::Info, summary),
    };
    (step, Some(m))
}
