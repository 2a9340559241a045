//! What the worker can see of its command's processes through `/proc`: the tree below the command, which of its
//! processes hold NVIDIA device files open, and the MPS pipe directory in their environment.

use super::membership::GpuProcess;
use crate::mps::observe::is_gpu_device;
use std::collections::BTreeMap;

/// The parent pid from a `/proc/PID/stat` line (the field after the parenthesised command, which may hold spaces).
pub fn parse_ppid(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and all its descendants, from a pid -> parent map.
pub fn descendants(root: u32, parents: &BTreeMap<u32, u32>) -> Vec<u32> {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, &pp)| pp == parent).map(|(&pid, _)| pid));
        i += 1;
    }
    tree.sort_unstable();
    tree.dedup();
    tree
}

/// A variable from `/proc/PID/environ` text (NUL-separated).
pub fn environ_value(environ: &[u8], name: &str) -> Option<String> {
    environ.split(|&b| b == 0).find_map(|entry| {
        let entry = std::str::from_utf8(entry).ok()?;
        entry.strip_prefix(name)?.strip_prefix('=').map(str::to_string)
    })
}

fn process_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Whether a process holds an NVIDIA device open; `None` when its descriptors cannot be read.
fn holds_gpu(pid: u32) -> Option<bool> {
    match std::fs::read_dir(format!("/proc/{pid}/fd")) {
        Ok(fds) => Some(
            fds.filter_map(|fd| fd.ok())
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|target| is_gpu_device(&target.to_string_lossy())),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false), // exited meanwhile
        Err(_) => None,
    }
}

/// The command's processes and who holds the GPU in this PID namespace, as `/proc` shows them now.
pub struct Snapshot {
    pub tree: Vec<u32>,
    pub gpu_processes: Vec<GpuProcess>,
    /// Processes outside the tree and other than this worker holding the GPU; `None`: some were unreadable.
    pub others_holding_gpu: Option<Vec<u32>>,
}

/// Looks at the tree under `root` and every other process of this namespace.
pub fn snapshot(root: u32) -> Snapshot {
    let me = std::process::id();
    let parents: BTreeMap<u32, u32> = process_pids()
        .into_iter()
        .filter_map(|pid| Some((pid, parse_ppid(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?)))
        .collect();
    let tree = descendants(root, &parents);
    let mut gpu_processes = Vec::new();
    let mut others = Some(Vec::new());
    for &pid in parents.keys().filter(|&&pid| pid != me) {
        let holds = holds_gpu(pid);
        if tree.contains(&pid) {
            if holds == Some(true) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                gpu_processes.push(GpuProcess {
                    pid,
                    comm: comm.trim().to_string(),
                    pipe_dir: environ_value(&environ, "CUDA_MPS_PIPE_DIRECTORY"),
                });
            }
        } else {
            match (holds, others.as_mut()) {
                (Some(true), Some(list)) => list.push(pid),
                (None, _) => others = None,
                _ => {}
            }
        }
    }
    Snapshot { tree, gpu_processes, others_holding_gpu: others }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_past_a_command_with_spaces_and_parentheses() {
        assert_eq!(parse_ppid("527 (python3) S 2 527 1 0"), Some(2));
        assert_eq!(parse_ppid("9 (my (odd) cmd) R 4 9 9"), Some(4));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn descendants_cover_grandchildren_and_nothing_else() {
        let parents = BTreeMap::from([(10, 1), (11, 10), (12, 11), (13, 1), (14, 13)]);
        assert_eq!(descendants(10, &parents), vec![10, 11, 12]);
        assert_eq!(descendants(99, &parents), vec![99]);
    }

    #[test]
    fn environment_values_are_found_exactly() {
        let env = b"PATH=/bin\0CUDA_MPS_PIPE_DIRECTORY_X=no\0CUDA_MPS_PIPE_DIRECTORY=/tmp/p\0";
        assert_eq!(environ_value(env, "CUDA_MPS_PIPE_DIRECTORY").as_deref(), Some("/tmp/p"));
        assert_eq!(environ_value(env, "HOME"), None);
    }

    #[test]
    fn this_process_tree_is_seen() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let s = snapshot(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(s.tree.contains(&child.id()), "{:?}", s.tree);
        assert!(s.gpu_processes.is_empty());
    }
}
