//! Is this process a client of the MPS daemon that was queried? Decided from evidence that holds wherever the
//! process runs: in the daemon's PID namespace, in a Pod's own PID namespace (where the daemon's client table
//! shows the process under the pid the *daemon* sees, not its own), with a private IPC namespace, as any uid.
//!
//! The evidence, in the order it is trusted (measured on an H100, driver 580; `shared/facts/mps-ground-truth.md`):
//! 1. **pid + namespace**: the daemon shares this PID namespace, so the table's pids are this process's pids.
//! 2. **execution affinity**: `cuDeviceGetExecAffinitySupport(SM_COUNT)` is 1 in an MPS client and 0 in any other
//!    process (both in and out of a PID namespace of its own), so it tells whether *this* process is served by MPS;
//!    together with "its pipe directory is the one queried" and "the daemon lists a client from this PID
//!    namespace" it proves membership of *that* daemon without any pid.
//! 3. **the only one**: where the affinity signal is missing (pre-Volta GPUs, a failed query), a single client row
//!    from this PID namespace while no other process here has a GPU open.
//!
//! Anything else is said as seen and left undecided: two GPU processes of one Pod in one PID namespace with no
//! affinity signal are never guessed apart. Pure: the caller gathers [`Evidence`].

use super::parse::ClientRow;
use serde::Serialize;

/// What the check saw that bears on membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// This process's pid as it sees itself.
    pub pid: u32,
    /// Inode of this process's PID namespace.
    pub pid_namespace: Option<u64>,
    /// Whether the daemon runs in this PID namespace (its pid file's pid or a server pid is an MPS process
    /// here); `None`: nothing to tell by.
    pub daemon_in_this_pid_namespace: Option<bool>,
    /// `cuDeviceGetExecAffinitySupport(CU_EXEC_AFFINITY_TYPE_SM_COUNT)` in this process after its context exists;
    /// `None` where the query failed or the GPU predates Volta (no SM affinity even under MPS).
    pub exec_affinity_supported: Option<bool>,
    /// The pipe directory this process's contexts use is the one the daemon was queried through.
    pub same_pipe_dir: bool,
    /// Other processes of this PID namespace holding an NVIDIA device open (`None`: some could not be read, or
    /// not looked at because the daemon shares this namespace).
    pub other_gpu_processes: Option<Vec<u32>>,
}

/// How membership was proven; stored with every MPS result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    /// Pid and PID namespace found in the client table, the daemon sharing this namespace.
    PidAndNamespace,
    /// Pid found in a table without a NAMESPACE column (older drivers), as before namespaces were printed.
    Pid,
    /// This process is an MPS client (execution affinity), of the queried pipe directory, and the daemon lists a
    /// client from its PID namespace.
    ExecAffinityAndNamespace,
    /// The only client row from this PID namespace, and no other GPU process in it.
    OnlyClientInNamespace,
}

impl Proof {
    pub fn label(self) -> &'static str {
        match self {
            Proof::PidAndNamespace => "pid+namespace",
            Proof::Pid => "pid",
            Proof::ExecAffinityAndNamespace => "exec-affinity+namespace",
            Proof::OnlyClientInNamespace => "only-client-in-namespace",
        }
    }
}

/// Why the process is not a client of the queried daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotJoined {
    /// Nothing says it is a client: no row for it (and, where known, not an MPS client at all).
    NoClientRow,
    /// It is an MPS client, but its contexts use another pipe directory: a client of another daemon.
    ClientOfAnotherDaemon,
    /// The rows from this PID namespace are other processes: this one is not an MPS client.
    OthersInNamespaceJoined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Decision {
    Joined {
        proof: Proof,
        /// This process's row, where the evidence singles it out.
        row: Option<ClientRow>,
        /// Client rows from this PID namespace (the daemon's pids for them).
        namespace_rows: usize,
    },
    NotJoined {
        why: NotJoined,
        namespace_rows: usize,
    },
    /// The evidence does not tell: what was seen, in words.
    Undecided {
        seen: String,
    },
}

impl Decision {
    pub fn joined(&self) -> bool {
        matches!(self, Decision::Joined { .. })
    }
}

/// Decides membership from the client table (`rows`, as `ps` printed it after this process's first kernel).
pub fn decide(rows: &[ClientRow], e: &Evidence) -> Decision {
    let table_has_namespaces = rows.iter().any(|r| r.pid_namespace.is_some());
    if e.daemon_in_this_pid_namespace == Some(true)
        || (!table_has_namespaces && e.daemon_in_this_pid_namespace.is_none())
    {
        return decide_by_pid(rows, e, table_has_namespaces);
    }
    let from_here: Vec<&ClientRow> =
        rows.iter().filter(|r| r.pid_namespace.is_some() && r.pid_namespace == e.pid_namespace).collect();
    let namespace_rows = from_here.len();
    let alone = e.other_gpu_processes.as_ref().is_some_and(|others| others.is_empty());
    let single = |proof| Decision::Joined {
        proof,
        row: (namespace_rows == 1 && alone).then(|| from_here[0].clone()),
        namespace_rows,
    };
    match (e.exec_affinity_supported, e.same_pipe_dir, namespace_rows) {
        (Some(true), true, n) if n > 0 => single(Proof::ExecAffinityAndNamespace),
        (Some(true), true, _) => Decision::Undecided {
            seen: format!(
                "this process behaves as an MPS client (execution affinity supported), yet the daemon lists no client \
                 from its PID namespace {}{}",
                namespace_text(e.pid_namespace),
                if table_has_namespaces { "" } else { " (this driver prints no NAMESPACE column)" }
            ),
        },
        (Some(true), false, 0) => Decision::NotJoined { why: NotJoined::ClientOfAnotherDaemon, namespace_rows },
        (Some(true), false, n) => Decision::Undecided {
            seen: format!(
                "this process is an MPS client through another pipe directory, and the queried daemon lists {n} client(s) \
                 from its PID namespace: the two directories may be one"
            ),
        },
        (Some(false), _, 0) => Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows },
        (Some(false), _, _) => Decision::NotJoined { why: NotJoined::OthersInNamespaceJoined, namespace_rows },
        (None, _, 0) if table_has_namespaces => Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows },
        (None, _, 1) if alone => single(Proof::OnlyClientInNamespace),
        (None, _, n) => Decision::Undecided {
            seen: format!(
                "the daemon runs in another PID namespace and lists {n} client(s) from this one ({}), {}; without an \
                 execution-affinity signal sharebench cannot tell whether one of them is this process",
                namespace_text(e.pid_namespace),
                match &e.other_gpu_processes {
                    Some(others) if others.is_empty() => "no other process here has a GPU open".to_string(),
                    Some(others) => format!("other processes here have a GPU open (pids {others:?})"),
                    None => "and the other processes here could not all be inspected".to_string(),
                }
            ),
        },
    }
}

/// The daemon sees this process's pids as it does: match the table by pid (and namespace where printed).
fn decide_by_pid(rows: &[ClientRow], e: &Evidence, table_has_namespaces: bool) -> Decision {
    let found = rows.iter().find(|row| {
        row.pid == e.pid
            && match (row.pid_namespace, e.pid_namespace) {
                (Some(theirs), Some(ours)) => theirs == ours,
                _ => true,
            }
    });
    let namespace_rows =
        rows.iter().filter(|r| r.pid_namespace.is_some() && r.pid_namespace == e.pid_namespace).count();
    match found {
        Some(row) => Decision::Joined {
            proof: if table_has_namespaces && row.pid_namespace.is_some() {
                Proof::PidAndNamespace
            } else {
                Proof::Pid
            },
            row: Some(row.clone()),
            namespace_rows,
        },
        None if e.exec_affinity_supported == Some(true) && !e.same_pipe_dir => {
            Decision::NotJoined { why: NotJoined::ClientOfAnotherDaemon, namespace_rows }
        }
        None => Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows },
    }
}

fn namespace_text(ns: Option<u64>) -> String {
    ns.map(|n| n.to_string()).unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: u64 = 4026532266;
    const NODE: u64 = 4026531836;

    fn row(pid: u32, ns: Option<u64>) -> ClientRow {
        ClientRow {
            pid,
            context_id: Some(1),
            server_pid: Some(462),
            device: Some("GPU-5a859580-50fd-9cee".into()),
            pid_namespace: ns,
            command: "sharebench".into(),
        }
    }

    /// A worker as a Pod runs it: pid 1 in its own PID namespace, the daemon outside.
    fn in_a_pod() -> Evidence {
        Evidence {
            pid: 1,
            pid_namespace: Some(OWN),
            daemon_in_this_pid_namespace: Some(false),
            exec_affinity_supported: Some(true),
            same_pipe_dir: true,
            other_gpu_processes: Some(vec![]),
        }
    }

    fn on_the_node(pid: u32) -> Evidence {
        Evidence {
            pid,
            pid_namespace: Some(NODE),
            daemon_in_this_pid_namespace: Some(true),
            other_gpu_processes: None,
            ..in_a_pod()
        }
    }

    #[test]
    fn a_pod_client_is_joined_though_the_table_shows_the_nodes_pid() {
        // As measured: the worker is pid 1, the table lists it as 479 with its own namespace.
        let d = decide(&[row(460, Some(NODE)), row(479, Some(OWN))], &in_a_pod());
        assert_eq!(
            d,
            Decision::Joined {
                proof: Proof::ExecAffinityAndNamespace,
                row: Some(row(479, Some(OWN))),
                namespace_rows: 1
            }
        );
    }

    #[test]
    fn two_clients_of_one_namespace_prove_membership_but_single_out_no_row() {
        let mut e = in_a_pod();
        e.other_gpu_processes = Some(vec![13]);
        let d = decide(&[row(548, Some(OWN)), row(561, Some(OWN))], &e);
        assert_eq!(d, Decision::Joined { proof: Proof::ExecAffinityAndNamespace, row: None, namespace_rows: 2 });
    }

    #[test]
    fn a_fallback_in_a_pod_is_not_joined_even_beside_a_client_of_its_namespace() {
        let mut e = in_a_pod();
        e.exec_affinity_supported = Some(false);
        assert_eq!(
            decide(&[row(460, Some(NODE))], &e),
            Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows: 0 }
        );
        assert_eq!(
            decide(&[row(548, Some(OWN))], &e),
            Decision::NotJoined { why: NotJoined::OthersInNamespaceJoined, namespace_rows: 1 }
        );
    }

    #[test]
    fn a_client_of_another_pipe_directory_is_not_a_client_of_this_daemon() {
        let mut e = in_a_pod();
        e.same_pipe_dir = false;
        assert_eq!(
            decide(&[row(460, Some(NODE))], &e),
            Decision::NotJoined { why: NotJoined::ClientOfAnotherDaemon, namespace_rows: 0 }
        );
        assert!(matches!(decide(&[row(548, Some(OWN))], &e), Decision::Undecided { .. }));
        let mut node = on_the_node(460);
        node.same_pipe_dir = false;
        assert_eq!(
            decide(&[row(461, Some(NODE))], &node),
            Decision::NotJoined { why: NotJoined::ClientOfAnotherDaemon, namespace_rows: 1 }
        );
    }

    #[test]
    fn an_affinity_signal_against_an_empty_namespace_is_undecided() {
        let d = decide(&[row(460, Some(NODE))], &in_a_pod());
        let Decision::Undecided { seen } = d else { panic!("{d:?}") };
        assert!(seen.contains("no client from its PID namespace 4026532266"), "{seen}");
    }

    #[test]
    fn without_an_affinity_signal_only_a_lone_client_is_joined() {
        let mut e = in_a_pod();
        e.exec_affinity_supported = None;
        assert_eq!(
            decide(&[row(479, Some(OWN))], &e),
            Decision::Joined { proof: Proof::OnlyClientInNamespace, row: Some(row(479, Some(OWN))), namespace_rows: 1 }
        );
        e.other_gpu_processes = Some(vec![7]);
        let Decision::Undecided { seen } = decide(&[row(479, Some(OWN))], &e) else { panic!() };
        assert!(seen.contains("pids [7]") && seen.contains("cannot tell"), "{seen}");
        e.other_gpu_processes = None;
        assert!(matches!(decide(&[row(479, Some(OWN)), row(480, Some(OWN))], &e), Decision::Undecided { .. }));
        assert_eq!(
            decide(&[row(460, Some(NODE))], &e),
            Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows: 0 }
        );
    }

    #[test]
    fn in_the_daemons_namespace_pid_and_namespace_decide() {
        assert_eq!(
            decide(&[row(452, Some(NODE))], &on_the_node(452)),
            Decision::Joined { proof: Proof::PidAndNamespace, row: Some(row(452, Some(NODE))), namespace_rows: 1 }
        );
        assert_eq!(
            decide(&[row(452, Some(NODE))], &on_the_node(453)),
            Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows: 1 }
        );
    }

    #[test]
    fn a_pod_pid_that_equals_a_node_pid_is_not_taken_for_this_process() {
        // Node pid 1 cannot be a client, but any small pid can collide: outside the daemon's namespace pids
        // are never compared.
        let mut e = in_a_pod();
        e.pid = 479;
        e.exec_affinity_supported = Some(false);
        assert_eq!(
            decide(&[row(479, Some(OWN))], &e),
            Decision::NotJoined { why: NotJoined::OthersInNamespaceJoined, namespace_rows: 1 }
        );
    }

    #[test]
    fn drivers_without_a_namespace_column_match_by_pid_as_before() {
        let e = Evidence { daemon_in_this_pid_namespace: None, pid_namespace: Some(NODE), ..on_the_node(9) };
        assert_eq!(
            decide(&[row(9, None)], &e),
            Decision::Joined { proof: Proof::Pid, row: Some(row(9, None)), namespace_rows: 0 }
        );
        assert_eq!(decide(&[row(8, None)], &e), Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows: 0 });
        assert_eq!(decide(&[], &e), Decision::NotJoined { why: NotJoined::NoClientRow, namespace_rows: 0 });
    }
}
