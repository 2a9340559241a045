//! Foreign commands as workloads (`sharebench run --exec -- COMMAND`): the reporting protocol (`protocol`), the
//! common measuring window (`window`), running and stopping the command (`supervise`), and verifying its sharing
//! mode from outside it (`processes` gathers, `membership` decides).

pub mod membership;
pub mod processes;
pub mod protocol;
pub mod session;
pub mod supervise;
pub mod window;

use crate::cli::MpsControlArgs;
use crate::mps::control::{ControlClient, Invocation};
use crate::mps::parse::{self, ControlAnswer};
use membership::{TreeDecision, TreeEvidence};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a missing client row is waited for (the server lists a new client a moment after it connects).
const ROW_WAIT: Duration = Duration::from_secs(3);

/// Looks at the command's tree under `root` and at the daemon of `pipe_dir`, as they are now.
pub fn observe(root: u32, pipe_dir: &Path, control: &MpsControlArgs) -> TreeEvidence {
    let snapshot = processes::snapshot(root);
    let client = crate::mps::control::locate(control.mps_control.as_deref()).map(|program| ControlClient {
        program,
        pipe_dir: pipe_dir.to_path_buf(),
        timeout: control.mps_timeout,
    });
    let ask = |command: &str| match client.as_ref().map(|c| c.query(command)) {
        Some(Invocation::Answered { output, .. }) => Some(output),
        _ => None,
    };
    let answer = match ask("ps") {
        Some(output) => parse::parse_ps(&output),
        None => ControlAnswer::Other { text: "the control client is missing or gave no answer".into() },
    };
    let servers = match answer {
        ControlAnswer::Clients { .. } | ControlAnswer::NoServer => {
            ask("get_server_list").and_then(|o| parse::parse_server_list(&o).ok()).unwrap_or_default()
        }
        _ => vec![],
    };
    let observed = crate::mps::observe::observe_pipe_dir(pipe_dir, "the command's CUDA_MPS_PIPE_DIRECTORY");
    let daemon_pids: Vec<u32> = observed.daemon_pid.into_iter().chain(servers).collect();
    TreeEvidence {
        pipe_dir: pipe_dir.display().to_string(),
        answer,
        daemon_in_this_pid_namespace: crate::mps::observe::daemon_in_this_pid_namespace(&daemon_pids),
        pid_namespace: crate::host::namespace_inode("pid"),
        gpu_processes: snapshot.gpu_processes,
        tree: snapshot.tree,
        others_holding_gpu: snapshot.others_holding_gpu,
    }
}

/// Decides the command's mode now; under MPS a missing row is looked for again for a few seconds.
pub fn verify(root: u32, pipe_dir: &Path, control: &MpsControlArgs, expect_mps: bool) -> TreeDecision {
    let deadline = Instant::now() + ROW_WAIT;
    loop {
        let decision = membership::decide(&observe(root, pipe_dir, control), expect_mps);
        let retry = expect_mps && !decision.as_expected && !decision.gpu_processes.is_empty();
        if !retry || Instant::now() >= deadline {
            return decision;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
