//! Is a foreign command in the sharing mode its worker claims? Decided for the command's whole process tree,
//! from outside it (pure: the caller gathers [`TreeEvidence`]).
//!
//! sharebench cannot ask the command's contexts for their execution affinity (only a process can ask about its
//! own), so the evidence is what the parent can see (measured on an H100, driver 580; results/h100/tenants/):
//! - the MPS control daemon's client table (`ps`), after the command reported ready (its contexts exist);
//! - which processes of this PID namespace hold NVIDIA device files open (a CUDA process holds `/dev/nvidiactl`,
//!   `/dev/nvidia0` and `/dev/nvidia-uvm` from `cuInit` on, MPS client or not: so this says who *could* hold a
//!   context, never whether it joined);
//! - the `CUDA_MPS_PIPE_DIRECTORY` in each such process's environment (where its contexts would go);
//! - and that the worker itself holds no context any more: it verified its own mode first, then released its
//!   context, which takes its row out of the table (measured).
//!
//! Where the daemon shares this PID namespace, its table's pids are the command's pids. In a Pod's own PID
//! namespace they are not (the table shows the node's pids), so the rows from this namespace are the command's
//! when nothing else here holds the GPU.

use crate::mps::parse::{ClientRow, ControlAnswer};
pub use crate::result::tenant::{GpuProcess, TreeDecision};
use crate::result::SharingVerdict;

/// What the worker saw of the command and the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEvidence {
    /// The pipe directory the command was given, and the daemon's answer to `ps` through it.
    pub pipe_dir: String,
    pub answer: ControlAnswer,
    /// Whether the daemon runs in this PID namespace (`None`: nothing to tell by).
    pub daemon_in_this_pid_namespace: Option<bool>,
    pub pid_namespace: Option<u64>,
    /// The command's processes (root and descendants) that hold the GPU open.
    pub gpu_processes: Vec<GpuProcess>,
    /// Every pid of the command's tree.
    pub tree: Vec<u32>,
    /// Other processes of this namespace (not the tree, not the worker) holding the GPU; `None`: unreadable.
    pub others_holding_gpu: Option<Vec<u32>>,
}

/// Decides whether the command's tree joined MPS (`expect_mps`) or stayed out of it (time-slicing).
pub fn decide(e: &TreeEvidence, expect_mps: bool) -> TreeDecision {
    let (verdict, proof, client_rows, text) = judge(e);
    let as_expected = matches!(
        (expect_mps, verdict),
        (true, SharingVerdict::MpsJoined) | (false, SharingVerdict::NoDaemon | SharingVerdict::MpsNotJoined)
    );
    TreeDecision { verdict, proof, as_expected, client_rows, gpu_processes: e.gpu_processes.clone(), text }
}

fn pids(processes: &[GpuProcess]) -> String {
    let list: Vec<String> = processes.iter().map(|p| format!("{} ({})", p.pid, p.comm)).collect();
    list.join(", ")
}

fn judge(e: &TreeEvidence) -> (SharingVerdict, Option<String>, usize, String) {
    let unverified = |text: String| (SharingVerdict::Unverified, None, 0, text);
    if e.gpu_processes.is_empty() {
        return unverified("no process of the command holds the GPU open: it has created no CUDA context".into());
    }
    let elsewhere: Vec<&GpuProcess> =
        e.gpu_processes.iter().filter(|p| p.pipe_dir.as_deref().is_some_and(|d| d != e.pipe_dir)).collect();
    if let Some(p) = elsewhere.first() {
        return unverified(format!(
            "process {} ({}) of the command uses pipe directory {}, not the {} it was given: it changed its own \
             environment, so where its contexts went is not known",
            p.pid,
            p.comm,
            p.pipe_dir.as_deref().unwrap_or("?"),
            e.pipe_dir
        ));
    }
    let rows = match &e.answer {
        ControlAnswer::Clients { rows } => rows.as_slice(),
        ControlAnswer::NoServer => &[],
        _ => {
            return (
                SharingVerdict::NoDaemon,
                None,
                0,
                format!(
                    "no MPS control daemon answers through {}: the command's contexts ({}) use time-slicing",
                    e.pipe_dir,
                    pids(&e.gpu_processes)
                ),
            )
        }
    };
    let by_pid = e.daemon_in_this_pid_namespace == Some(true)
        || (e.daemon_in_this_pid_namespace.is_none() && rows.iter().all(|r| r.pid_namespace.is_none()));
    if by_pid {
        let mine: Vec<&ClientRow> = rows
            .iter()
            .filter(|r| e.tree.contains(&r.pid) && (r.pid_namespace.is_none() || r.pid_namespace == e.pid_namespace))
            .collect();
        if mine.is_empty() {
            return (
                SharingVerdict::MpsNotJoined,
                None,
                0,
                format!(
                    "the daemon of {} lists none of the command's processes ({}): they run without MPS",
                    e.pipe_dir,
                    pids(&e.gpu_processes)
                ),
            );
        }
        let listed: Vec<String> = mine.iter().map(|r| r.pid.to_string()).collect();
        return (
            SharingVerdict::MpsJoined,
            Some("command-pid+namespace".into()),
            mine.len(),
            format!(
                "the daemon of {} lists the command's pid(s) {} as clients (its GPU processes: {})",
                e.pipe_dir,
                listed.join(", "),
                pids(&e.gpu_processes)
            ),
        );
    }
    let from_here = rows.iter().filter(|r| r.pid_namespace.is_some() && r.pid_namespace == e.pid_namespace).count();
    let ns = e.pid_namespace.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
    match (&e.others_holding_gpu, from_here) {
        (_, 0) => (
            SharingVerdict::MpsNotJoined,
            None,
            0,
            format!(
                "the daemon of {} (in another PID namespace) lists no client from this PID namespace {ns}, while the \
                 command's processes {} hold the GPU: they run without MPS",
                e.pipe_dir,
                pids(&e.gpu_processes)
            ),
        ),
        (Some(others), n) if others.is_empty() => (
            SharingVerdict::MpsJoined,
            Some("command-tree+namespace".into()),
            n,
            format!(
                "the daemon of {} lists {n} client(s) from this PID namespace {ns}, and the only processes here \
                 holding the GPU are the command's ({}); the worker released its own context first",
                e.pipe_dir,
                pids(&e.gpu_processes)
            ),
        ),
        (others, n) => unverified(format!(
            "the daemon lists {n} client(s) from this PID namespace {ns}, but {}: they cannot be told from the command's",
            match others {
                Some(o) => format!("other processes here hold the GPU too (pids {o:?})"),
                None => "the other processes here could not all be inspected".into(),
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: u64 = 4026532266;
    const NODE: u64 = 4026531836;

    fn row(pid: u32, ns: u64) -> ClientRow {
        ClientRow {
            pid,
            context_id: Some(1),
            server_pid: Some(459),
            device: Some("GPU-54d28c73".into()),
            pid_namespace: Some(ns),
            command: "python3".into(),
        }
    }

    fn gpu(pid: u32, pipe: Option<&str>) -> GpuProcess {
        GpuProcess { pid, comm: "python3".into(), pipe_dir: pipe.map(str::to_string) }
    }

    fn evidence(rows: Vec<ClientRow>, in_ns: Option<bool>, ns: u64) -> TreeEvidence {
        TreeEvidence {
            pipe_dir: "/tmp/nvidia-mps".into(),
            answer: ControlAnswer::Clients { rows },
            daemon_in_this_pid_namespace: in_ns,
            pid_namespace: Some(ns),
            gpu_processes: vec![gpu(2, Some("/tmp/nvidia-mps"))],
            tree: vec![1, 2],
            others_holding_gpu: Some(vec![]),
        }
    }

    #[test]
    fn in_a_pod_the_rows_of_its_namespace_are_the_commands_when_nothing_else_holds_the_gpu() {
        // Measured: a child in its own PID namespace is listed under the node's pid (527) with the namespace.
        let d = decide(&evidence(vec![row(527, OWN), row(480, NODE)], Some(false), OWN), true);
        assert_eq!(
            (d.verdict, d.proof.as_deref(), d.client_rows, d.as_expected),
            (SharingVerdict::MpsJoined, Some("command-tree+namespace"), 1, true)
        );
        let mut e = evidence(vec![row(527, OWN)], Some(false), OWN);
        e.others_holding_gpu = Some(vec![7]);
        let d = decide(&e, true);
        assert_eq!((d.verdict, d.as_expected), (SharingVerdict::Unverified, false));
        assert!(d.text.contains("pids [7]"));
    }

    #[test]
    fn no_row_from_the_namespace_is_a_silent_fallback() {
        let d = decide(&evidence(vec![row(480, NODE)], Some(false), OWN), true);
        assert_eq!((d.verdict, d.as_expected), (SharingVerdict::MpsNotJoined, false));
        assert!(d.text.contains("run without MPS"));
        // ... which is what time-slicing expects.
        assert!(decide(&evidence(vec![row(480, NODE)], Some(false), OWN), false).as_expected);
    }

    #[test]
    fn beside_the_daemon_the_commands_pids_are_matched() {
        let d = decide(&evidence(vec![row(2, NODE)], Some(true), NODE), true);
        assert_eq!((d.verdict, d.proof.as_deref()), (SharingVerdict::MpsJoined, Some("command-pid+namespace")));
        let d = decide(&evidence(vec![row(99, NODE)], Some(true), NODE), true);
        assert_eq!(d.verdict, SharingVerdict::MpsNotJoined);
        // Time-slicing must not find the command among the clients.
        let d = decide(&evidence(vec![row(2, NODE)], Some(true), NODE), false);
        assert_eq!((d.verdict, d.as_expected), (SharingVerdict::MpsJoined, false));
    }

    #[test]
    fn no_daemon_is_time_slicing() {
        let mut e = evidence(vec![], None, OWN);
        e.answer = ControlAnswer::NoDaemon;
        let d = decide(&e, false);
        assert_eq!((d.verdict, d.as_expected), (SharingVerdict::NoDaemon, true));
        assert!(!decide(&e, true).as_expected);
    }

    #[test]
    fn a_command_without_a_context_or_with_its_own_pipe_directory_is_not_decided() {
        let mut e = evidence(vec![row(527, OWN)], Some(false), OWN);
        e.gpu_processes.clear();
        let d = decide(&e, true);
        assert_eq!(d.verdict, SharingVerdict::Unverified);
        assert!(d.text.contains("no CUDA context"));
        let mut e = evidence(vec![row(527, OWN)], Some(false), OWN);
        e.gpu_processes.push(gpu(3, Some("/elsewhere")));
        let d = decide(&e, true);
        assert_eq!(d.verdict, SharingVerdict::Unverified);
        assert!(d.text.contains("uses pipe directory /elsewhere"));
    }
}
