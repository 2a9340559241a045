//! Gathers the check's observations: the pipe directory, the control daemon's answer, the environment, and (through
//! a probe that makes a CUDA context) whether this process joined the MPS server. The effects of the check.

use super::*;

/// How long membership is looked for after the context's first kernel.
const MEMBERSHIP_WAIT: Duration = Duration::from_secs(3);

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
        None => (PathBuf::from(crate::mps::observe::DEFAULT_PIPE_DIR), "default".to_string()),
    }
}

/// Gathers the observations and diagnoses them. `probe` creates this process's CUDA context, runs a kernel in
/// it and reports what the context sees; it is called only when a daemon answers (otherwise nothing can join).
pub fn run_check(settings: &CheckSettings, probe: impl FnOnce() -> Result<ContextProbe, Error>) -> CheckReport {
    let pipe_dir = crate::mps::observe::observe_pipe_dir(&settings.pipe_dir, &settings.pipe_dir_source);
    let program = crate::mps::control::locate(settings.control_program.as_deref());
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
    let environment = crate::mps::observe::observe_environment();
    let (mut membership, mut membership_skipped, mut context_ran) = (None, None, None);
    let (mut memory_seen, mut daemon_memory_limit) = (None, None);
    match (&client, daemon_answers(&answer)) {
        (Some(c), true) => match probe() {
            Ok(probe) => {
                memory_seen = MemorySeen::of(&probe);
                daemon_memory_limit = match c.query(&format!("get_default_device_pinned_mem_limit {}", probe.ordinal)) {
                    Invocation::Answered { output, .. } => Some(output),
                    _ => None,
                };
                membership = Some(observe_membership(c, probe, &environment, &pipe_dir, server_pids.as_deref()))
            }
            Err(e) => membership_skipped = Some(format!("could not create a CUDA context: {}", e.problem)),
        },
        _ => {
            // Nothing to join; but "time-slicing" is an answer only where a CUDA context really runs.
            let ran = probe();
            memory_seen = ran.as_ref().ok().and_then(MemorySeen::of);
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
        memory_seen,
        daemon_memory_limit,
    })
}

/// Asks the daemon for its clients after this process's first kernel and decides membership. The server may
/// list a new client a moment after that kernel, so `ps` is asked again until joined or [`MEMBERSHIP_WAIT`].
fn observe_membership(
    client: &ControlClient,
    probe: ContextProbe,
    environment: &crate::mps::observe::EnvironmentObservation,
    pipe_dir: &PipeDirObservation,
    server_pids: Option<&[u32]>,
) -> Membership {
    let daemon_pids: Vec<u32> =
        pipe_dir.daemon_pid.into_iter().chain(server_pids.unwrap_or_default().iter().copied()).collect();
    let daemon_in_this_pid_namespace = crate::mps::observe::daemon_in_this_pid_namespace(&daemon_pids);
    let evidence = membership::Evidence {
        pid: environment.pid,
        pid_namespace: environment.pid_namespace,
        daemon_in_this_pid_namespace,
        exec_affinity_supported: probe.exec_affinity_supported,
        same_pipe_dir: same_directory(&context_pipe_dir().0, std::path::Path::new(&pipe_dir.path)),
        other_gpu_processes: match daemon_in_this_pid_namespace {
            Some(true) => None,
            _ => crate::mps::observe::other_gpu_processes(),
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
