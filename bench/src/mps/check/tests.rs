//! Every diagnosis path of the check, from observations shaped like those recorded on the H100.

use super::*;
use crate::mps::observe::{EnvironmentObservation, PipeDirObservation};
use crate::mps::parse::ClientRow;
use crate::result::memory::LimitSource;

const NS: u64 = 4026531836;

fn pipe_dir(exists: bool, socket: bool) -> PipeDirObservation {
    PipeDirObservation {
        path: "/tmp/nvidia-mps".into(),
        source: "default".into(),
        exists,
        is_dir: exists,
        owner_uid: exists.then_some(0),
        mode: exists.then_some(0o755),
        accessible: exists,
        entries: if socket {
            vec![
                "control".into(),
                "control_lock".into(),
                "control_privileged".into(),
                "log".into(),
                "nvidia-cuda-mps-control.pid".into(),
            ]
        } else {
            vec![]
        },
        control_socket: socket,
        daemon_pid: socket.then_some(400),
        daemon_pid_running: socket.then_some(true),
    }
}

fn observations(expect: Expectation, pipe: PipeDirObservation, answer: Option<ControlAnswer>) -> Observations {
    let ps = answer.as_ref().map(|_| Invocation::Answered { output: String::new(), exit_code: Some(0), elapsed_ms: 3 });
    Observations {
        expect,
        context_pipe_dir: pipe.path.clone(),
        pipe_dir: pipe,
        control_program: Some("/usr/bin/nvidia-cuda-mps-control".into()),
        timeout_ms: 5000,
        ps,
        answer,
        server_pids: None,
        environment: EnvironmentObservation {
            uid: 0,
            pid: 452,
            pid_namespace: Some(NS),
            ipc_namespace: Some(4026531839),
            dev_shm: None,
            mps_variables: Default::default(),
        },
        membership: None,
        membership_skipped: Some("no daemon answered, so there is nothing to join".into()),
        context_ran: Some(true),
        memory_seen: None,
        daemon_memory_limit: None,
    }
}

fn row(pid: u32, ns: Option<u64>) -> ClientRow {
    ClientRow {
        pid,
        context_id: Some(1),
        server_pid: Some(470),
        device: Some("GPU-e370a465-49c4-8458".into()),
        pid_namespace: ns,
        command: "sharebench".into(),
    }
}

/// The evidence of a process in the daemon's own PID namespace (pid 452), an MPS client by execution affinity.
fn node_evidence() -> membership::Evidence {
    membership::Evidence {
        pid: 452,
        pid_namespace: Some(NS),
        daemon_in_this_pid_namespace: Some(true),
        exec_affinity_supported: Some(true),
        same_pipe_dir: true,
        other_gpu_processes: None,
    }
}

/// The evidence of a worker in a Pod: pid 1 in PID namespace `POD_NS`, the daemon outside.
const POD_NS: u64 = 4026532266;
fn pod_evidence(exec_affinity_supported: Option<bool>) -> membership::Evidence {
    membership::Evidence {
        pid: 1,
        pid_namespace: Some(POD_NS),
        daemon_in_this_pid_namespace: Some(false),
        exec_affinity_supported,
        same_pipe_dir: true,
        other_gpu_processes: Some(vec![]),
    }
}

fn with_evidence(mut o: Observations, rows: Vec<ClientRow>, evidence: membership::Evidence) -> Observations {
    o.environment.pid = evidence.pid;
    o.environment.pid_namespace = evidence.pid_namespace;
    let decision = membership::decide(&rows, &evidence);
    o.membership = Some(Membership {
        probe: ContextProbe {
            gpu_uuid: "GPU-e370a465".into(),
            device_sm_count: 132,
            context_sm_count: 32,
            exec_affinity_supported: evidence.exec_affinity_supported,
            ordinal: 0,
            memory_seen: Some((7 << 29, 140 << 30)),
        },
        ps_after_context: Invocation::Answered { output: String::new(), exit_code: Some(0), elapsed_ms: 2 },
        answer: ControlAnswer::Clients { rows },
        proof: match &decision {
            Decision::Joined { proof, .. } => Some(proof.label().into()),
            _ => None,
        },
        evidence,
        decision,
        in_device_client_list: None,
    });
    o.membership_skipped = None;
    o
}

fn with_membership(o: Observations, rows: Vec<ClientRow>) -> Observations {
    with_evidence(o, rows, node_evidence())
}

fn step<'a>(r: &'a CheckReport, name: &str) -> &'a Step {
    r.steps.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn healthy_and_joined() {
    let o = with_membership(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(452, Some(NS))],
    );
    let r = diagnose(o);
    assert_eq!((r.verdict, r.exit_code, r.healthy), (SharingVerdict::MpsJoined, exit::OK, true));
    assert!(step(&r, "membership").summary.contains("context sees 32 of 132 SMs"));
    assert!(render(&r).ends_with("verdict: mps: joined\n"));
}

#[test]
fn same_pid_in_another_namespace_is_not_us() {
    let o = with_membership(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(452, Some(NS + 1))],
    );
    let r = diagnose(o);
    assert_eq!((r.verdict, r.exit_code), (SharingVerdict::MpsNotJoined, exit::NOT_JOINED));
    let m = step(&r, "membership");
    assert_eq!(m.status, StepStatus::Fail);
    assert!(m.cause.as_ref().unwrap().contains("silent fallback"));
}

#[test]
fn a_worker_in_its_own_pid_namespace_is_joined_and_told_why() {
    // As measured on the H100: the worker sees itself as pid 1, the daemon lists it as 479 with its namespace.
    let mut pipe = pipe_dir(true, true);
    pipe.daemon_pid_running = Some(false);
    let o = with_evidence(
        observations(Expectation::Mps, pipe, Some(ControlAnswer::NoServer)),
        vec![row(460, Some(NS)), row(479, Some(POD_NS))],
        pod_evidence(Some(true)),
    );
    let r = diagnose(o);
    assert_eq!((r.verdict, r.exit_code, r.healthy), (SharingVerdict::MpsJoined, exit::OK, true));
    let m = step(&r, "membership");
    assert!(m.summary.contains("node pid 479 from PID namespace 4026532266"), "{}", m.summary);
    assert!(m.summary.contains("exec-affinity+namespace"), "{}", m.summary);
    assert_eq!(r.observations.membership.as_ref().unwrap().proof.as_deref(), Some("exec-affinity+namespace"));
    let e = step(&r, "environment");
    assert!(e.summary.contains("runs in another PID namespace"), "{}", e.summary);
    let p = step(&r, "pipe directory");
    assert_eq!(p.status, StepStatus::Ok, "a daemon that answers is not stale: {}", p.summary);
    assert!(p.summary.contains("the daemon runs in another one"), "{}", p.summary);
}

#[test]
fn a_fallback_in_its_own_pid_namespace_is_not_joined_and_sent_to_the_pipe_directory() {
    let o = with_evidence(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(460, Some(NS))],
        pod_evidence(Some(false)),
    );
    let r = diagnose(o);
    assert_eq!((r.verdict, r.exit_code), (SharingVerdict::MpsNotJoined, exit::NOT_JOINED));
    let m = step(&r, "membership");
    assert!(m.summary.contains("in another PID namespace"), "{}", m.summary);
    assert!(m.fix.as_ref().unwrap().contains("CUDA_MPS_PIPE_DIRECTORY"));
}

#[test]
fn a_client_is_never_sent_to_fix_its_pipe_directory() {
    // Ambiguous: no affinity signal, two clients of this namespace and another GPU process beside this one.
    let mut evidence = pod_evidence(None);
    evidence.other_gpu_processes = Some(vec![7]);
    let o = with_evidence(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(479, Some(POD_NS)), row(480, Some(POD_NS))],
        evidence,
    );
    let r = diagnose(o);
    assert_eq!(r.verdict, SharingVerdict::Unverified);
    assert!(!r.healthy && r.exit_code != exit::OK);
    let m = step(&r, "membership");
    assert!(m.summary.starts_with("could not tell"), "{}", m.summary);
    assert!(!m.fix.as_ref().unwrap().contains("CUDA_MPS_PIPE_DIRECTORY"), "{:?}", m.fix);
    // Another process of the namespace joined, this one did not: the fix is about this process's environment.
    let o = with_evidence(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(479, Some(POD_NS))],
        pod_evidence(Some(false)),
    );
    let m = diagnose(o).steps.into_iter().find(|s| s.name == "membership").unwrap();
    assert!(m.summary.contains("are other processes"), "{}", m.summary);
}

#[test]
fn a_client_of_another_daemon_is_named() {
    let mut evidence = pod_evidence(Some(true));
    evidence.same_pipe_dir = false;
    let mut o = observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer));
    o.context_pipe_dir = "/tmp/other-mps".into();
    let r = diagnose(with_evidence(o, vec![row(460, Some(NS))], evidence));
    assert_eq!(r.verdict, SharingVerdict::MpsNotJoined);
    let m = step(&r, "membership");
    assert!(m.summary.contains("through pipe directory /tmp/other-mps"), "{}", m.summary);
}

#[test]
fn tables_without_namespace_match_by_pid() {
    let mut evidence = node_evidence();
    evidence.daemon_in_this_pid_namespace = None;
    let o = with_evidence(
        observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(9, None), row(452, None)],
        evidence,
    );
    let r = diagnose(o);
    assert_eq!(r.verdict, SharingVerdict::MpsJoined);
    assert!(step(&r, "membership").summary.contains("matched by pid)"), "{}", step(&r, "membership").summary);
}

#[test]
fn missing_pipe_dir_means_no_daemon() {
    let r = diagnose(observations(Expectation::Mps, pipe_dir(false, false), Some(ControlAnswer::NoDaemon)));
    assert_eq!((r.verdict, r.exit_code), (SharingVerdict::NoDaemon, exit::MPS_BROKEN));
    let p = step(&r, "pipe directory");
    assert_eq!(p.status, StepStatus::Fail);
    assert!(p.summary.contains("does not exist"));
    assert!(p.fix.as_ref().unwrap().contains("nvidia-cuda-mps-control -d"));
    assert!(render(&r).contains("verdict: no daemon: time-slicing"));
}

#[test]
fn empty_pipe_dir_is_named() {
    let r = diagnose(observations(Expectation::Mps, pipe_dir(true, false), Some(ControlAnswer::NoDaemon)));
    let p = step(&r, "pipe directory");
    assert!(p.summary.contains("holds no control socket (empty)"), "{}", p.summary);
    assert!(p.cause.as_ref().unwrap().contains("wrong node path"));
}

#[test]
fn stale_socket_after_the_daemon_died() {
    let mut pipe = pipe_dir(true, true);
    pipe.daemon_pid_running = Some(false);
    let r = diagnose(observations(Expectation::Mps, pipe, Some(ControlAnswer::NoDaemon)));
    assert_eq!(step(&r, "pipe directory").status, StepStatus::Warn);
    let c = step(&r, "control daemon");
    assert!(c.summary.contains("stale socket"));
    assert!(c.cause.as_ref().unwrap().contains("socket file proves nothing"));
    assert_eq!(r.exit_code, exit::MPS_BROKEN);
}

#[test]
fn private_pipe_dir_of_another_user() {
    let mut pipe = pipe_dir(true, false);
    pipe.accessible = false;
    pipe.mode = Some(0o700);
    let mut o = observations(Expectation::Mps, pipe, Some(ControlAnswer::NoDaemon));
    o.environment.uid = 65534;
    let r = diagnose(o);
    let p = step(&r, "pipe directory");
    assert!(p.summary.contains("not accessible to uid 65534 (owner uid 0, mode 700)"), "{}", p.summary);
    assert!(p.fix.as_ref().unwrap().contains("run the workload as uid 0"));
}

#[test]
fn a_hang_is_its_own_failure() {
    let mut o = observations(Expectation::Mps, pipe_dir(true, true), None);
    o.ps = Some(Invocation::TimedOut { after_ms: 5000 });
    let r = diagnose(o);
    assert!(step(&r, "control daemon").summary.contains("no answer within 5000 ms: hung"));
    assert_eq!((r.verdict, r.exit_code), (SharingVerdict::Unverified, exit::MPS_BROKEN));
}

#[test]
fn refused_transport_and_unknown_answers() {
    for (answer, text) in [
        (ControlAnswer::ConnectionRefused, "Connection refused"),
        (ControlAnswer::TransportNotConnected, "Transport endpoint is not connected"),
        (ControlAnswer::Other { text: "bzzt".into() }, "\"bzzt\""),
    ] {
        let r = diagnose(observations(Expectation::Mps, pipe_dir(true, true), Some(answer)));
        let c = step(&r, "control daemon");
        assert_eq!(c.status, StepStatus::Fail);
        assert!(c.summary.contains(text), "{}", c.summary);
        assert_eq!(r.exit_code, exit::MPS_BROKEN);
    }
}

#[test]
fn missing_control_client_is_explained() {
    let mut o = observations(Expectation::Mps, pipe_dir(true, true), None);
    o.control_program = None;
    let r = diagnose(o);
    let c = step(&r, "control daemon");
    assert!(c.fix.as_ref().unwrap().contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility"));
}

#[test]
fn timeslice_expectation() {
    let r = diagnose(observations(Expectation::Timeslice, pipe_dir(false, false), Some(ControlAnswer::NoDaemon)));
    assert_eq!((r.verdict, r.exit_code, r.healthy), (SharingVerdict::NoDaemon, exit::OK, true));
    let o = with_membership(
        observations(Expectation::Timeslice, pipe_dir(true, true), Some(ControlAnswer::NoServer)),
        vec![row(452, Some(NS))],
    );
    let r = diagnose(o);
    assert_eq!((r.verdict, r.exit_code), (SharingVerdict::MpsJoined, exit::NOT_JOINED));
    assert!(step(&r, "membership").fix.as_ref().unwrap().contains("empty directory"));
}

#[test]
fn a_pipe_dir_mismatch_is_warned_about() {
    let mut o = observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer));
    o.context_pipe_dir = "/elsewhere".into();
    let r = diagnose(o);
    let e = step(&r, "environment");
    assert_eq!(e.status, StepStatus::Warn);
    assert!(e.summary.contains("use pipe directory /elsewhere"));
}

/// The probed context's memory, as the H200 showed it under an 8 GiB client limit: 7.5 GiB free of 139.8 GiB.
fn with_memory(mut o: Observations, limit_env: Option<&str>, daemon: Option<&str>) -> Observations {
    o.memory_seen = Some(MemorySeen {
        ordinal: 0,
        uuid: "GPU-e370a465".into(),
        free_bytes: 15 << 29,
        total_bytes: (1398 << 30) / 10,
    });
    if let Some(v) = limit_env {
        o.environment.mps_variables.insert(crate::mps::memory::LIMIT_ENV.into(), v.into());
    }
    o.daemon_memory_limit = daemon.map(String::from);
    o
}

#[test]
fn the_memory_a_client_may_use_is_reported_with_its_limit_and_its_source() {
    let joined = |env, daemon| {
        let o = observations(Expectation::Mps, pipe_dir(true, true), Some(ControlAnswer::NoServer));
        diagnose(with_memory(with_membership(o, vec![row(452, Some(NS))]), env, daemon))
    };
    let r = joined(Some("0=8G"), Some("16G\n"));
    let m = step(&r, "memory");
    assert_eq!(m.status, StepStatus::Info);
    assert!(
        m.summary.starts_with("sees 7.5 GiB free of 139.8 GiB; MPS pinned memory limit 8.0 GiB from"),
        "{}",
        m.summary
    );
    assert!(m.summary.contains("per CUDA process, not per Pod"), "{}", m.summary);
    let memory = r.memory.as_ref().unwrap();
    assert_eq!((memory.limit_bytes, memory.limit_source), (Some(8 << 30), LimitSource::ClientEnvironment));
    // No client setting: the daemon's default is the limit.
    let r = joined(None, Some("16G\n"));
    assert_eq!(r.memory.as_ref().unwrap().limit_source, LimitSource::DaemonDefault);
    assert_eq!(joined(None, Some("0\n")).memory.unwrap().limit_source, LimitSource::OnlyObserved);
    // A malformed setting is named, with its fix; the check's verdict does not change.
    let r = joined(Some("0:8G"), None);
    let m = step(&r, "memory");
    assert_eq!((m.status, r.verdict), (StepStatus::Warn, SharingVerdict::MpsJoined));
    assert!(m.cause.as_ref().unwrap().contains("'0:8G'") && m.fix.as_ref().unwrap().contains("0=8G"), "{m:?}");
}

#[test]
fn a_memory_limit_under_time_slicing_is_said_to_bind_nothing() {
    let o = observations(Expectation::Timeslice, pipe_dir(false, false), None);
    let r = diagnose(with_memory(o, Some("0=8G"), None));
    let m = step(&r, "memory");
    assert_eq!((m.status, r.healthy), (StepStatus::Warn, true));
    assert!(m.summary.contains("set but not enforced"), "{}", m.summary);
    assert_eq!(r.memory.unwrap().limit_source, LimitSource::NotEnforced);
    let none = diagnose(observations(Expectation::Timeslice, pipe_dir(false, false), None));
    assert_eq!((step(&none, "memory").status, none.memory.is_none()), (StepStatus::Skipped, true));
}
