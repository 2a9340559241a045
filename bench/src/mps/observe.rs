//! What the check looks at besides the control daemon: the pipe directory's contents and permissions, and the
//! process environment the MPS tutorials worry about (namespaces, `/dev/shm`, `CUDA_MPS_*`). Reads the file
//! system and `/proc`; parsing helpers are pure.

use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// The default pipe directory of the MPS control daemon.
pub const DEFAULT_PIPE_DIR: &str = "/tmp/nvidia-mps";
pub const PID_FILE: &str = "nvidia-cuda-mps-control.pid";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipeDirObservation {
    pub path: String,
    /// Where the path came from: `--pipe-dir`, `CUDA_MPS_PIPE_DIRECTORY`, or `default`.
    pub source: String,
    pub exists: bool,
    pub is_dir: bool,
    pub owner_uid: Option<u32>,
    pub mode: Option<u32>,
    /// Whether this process may list and enter it.
    pub accessible: bool,
    pub entries: Vec<String>,
    /// `control` exists and is a unix socket.
    pub control_socket: bool,
    /// From `nvidia-cuda-mps-control.pid`.
    pub daemon_pid: Option<u32>,
    /// Whether that pid runs here (`None`: no pid, or another PID namespace could hide it).
    pub daemon_pid_running: Option<bool>,
}

/// Looks at a pipe directory without changing anything.
pub fn observe_pipe_dir(path: &Path, source: &str) -> PipeDirObservation {
    let meta = std::fs::metadata(path).ok();
    let is_dir = meta.as_ref().is_some_and(|m| m.is_dir());
    let listing = std::fs::read_dir(path).ok();
    let accessible = listing.is_some() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    let mut entries: Vec<String> = listing
        .map(|l| l.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    entries.sort();
    let control_socket = std::fs::symlink_metadata(path.join("control")).is_ok_and(|m| m.file_type().is_socket());
    let daemon_pid = std::fs::read_to_string(path.join(PID_FILE)).ok().and_then(|t| t.trim().parse().ok());
    PipeDirObservation {
        path: path.display().to_string(),
        source: source.to_string(),
        exists: meta.is_some() || std::fs::symlink_metadata(path).is_ok(),
        is_dir,
        owner_uid: meta.as_ref().map(|m| m.uid()),
        mode: meta.as_ref().map(|m| m.mode() & 0o7777),
        accessible,
        entries,
        control_socket,
        daemon_pid,
        daemon_pid_running: daemon_pid.map(|pid| Path::new(&format!("/proc/{pid}")).exists()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShmMount {
    pub fs_type: String,
    pub source: String,
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvironmentObservation {
    pub uid: u32,
    pub pid: u32,
    pub pid_namespace: Option<u64>,
    pub ipc_namespace: Option<u64>,
    /// `/dev/shm` when it is a mount of its own, else `None`.
    pub dev_shm: Option<ShmMount>,
    /// Every `CUDA_MPS_*` variable of this process.
    pub mps_variables: BTreeMap<String, String>,
}

/// Finds the mount at `mount_point` in `/proc/self/mountinfo` text: (fs type, source).
pub fn find_mount(mountinfo: &str, mount_point: &str) -> Option<(String, String)> {
    mountinfo.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let point = left.split_whitespace().nth(4)?;
        if point != mount_point {
            return None;
        }
        let mut r = right.split_whitespace();
        Some((r.next()?.to_string(), r.next().unwrap_or("").to_string()))
    })
}

pub fn observe_environment() -> EnvironmentObservation {
    let dev_shm = std::fs::read_to_string("/proc/self/mountinfo").ok().and_then(|m| find_mount(&m, "/dev/shm")).map(
        |(fs_type, source)| {
            let size_bytes = nix::sys::statvfs::statvfs("/dev/shm").ok().map(|s| s.blocks() * s.fragment_size());
            ShmMount { fs_type, source, size_bytes }
        },
    );
    EnvironmentObservation {
        uid: nix::unistd::getuid().as_raw(),
        pid: std::process::id(),
        pid_namespace: crate::host::namespace_inode("pid"),
        ipc_namespace: crate::host::namespace_inode("ipc"),
        dev_shm,
        mps_variables: std::env::vars().filter(|(k, _)| k.starts_with("CUDA_MPS_")).collect(),
    }
}

/// The name the kernel gives the MPS control daemon and server processes (`comm` is cut at 15 bytes).
const MPS_PROCESS_COMM: &str = "nvidia-cuda-mps";

/// Whether the MPS daemon runs in this PID namespace: any of `pids` (its pid file's, its servers') is an MPS
/// process here. `None` when there is no pid to look for. A Pod without hostPID sees `Some(false)`.
pub fn daemon_in_this_pid_namespace(pids: &[u32]) -> Option<bool> {
    if pids.is_empty() {
        return None;
    }
    Some(pids.iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim().starts_with(MPS_PROCESS_COMM))
    }))
}

/// Whether a `/proc/PID/fd` link target is an NVIDIA device node.
pub fn is_gpu_device(link: &str) -> bool {
    link.starts_with("/dev/nvidia") && !link.starts_with("/dev/nvidia-caps")
}

/// Other processes of this PID namespace (as this `/proc` shows it) holding an NVIDIA device open; `None` when
/// a process's descriptors could not be read (another user's, without privileges).
pub fn other_gpu_processes() -> Option<Vec<u32>> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()) {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let fds = match std::fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => fds,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue, // exited meanwhile
            Err(_) => return None,
        };
        let holds_gpu = fds
            .filter_map(|fd| fd.ok())
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .any(|target| is_gpu_device(&target.to_string_lossy()));
        if holds_gpu {
            found.push(pid);
        }
    }
    found.sort_unstable();
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_device_nodes_are_told_from_other_files() {
        assert!(is_gpu_device("/dev/nvidia0") && is_gpu_device("/dev/nvidiactl") && is_gpu_device("/dev/nvidia-uvm"));
        assert!(!is_gpu_device("/dev/null") && !is_gpu_device("socket:[9256]"));
        assert!(!is_gpu_device("/dev/nvidia-caps/nvidia-cap1"));
    }

    #[test]
    fn this_test_process_is_no_mps_daemon_and_holds_no_gpu() {
        assert_eq!(daemon_in_this_pid_namespace(&[]), None);
        assert_eq!(daemon_in_this_pid_namespace(&[std::process::id(), 999_999_999]), Some(false));
        assert!(!other_gpu_processes().unwrap_or_default().contains(&std::process::id()));
    }

    #[test]
    fn finds_the_dev_shm_mount() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    30 25 0:26 / /dev/shm rw,nosuid,nodev - tmpfs shm rw,size=65536k\n";
        assert_eq!(find_mount(info, "/dev/shm"), Some(("tmpfs".into(), "shm".into())));
        assert_eq!(find_mount(info, "/tmp"), None);
    }

    #[test]
    fn an_empty_pipe_dir_and_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let o = observe_pipe_dir(dir.path(), "--pipe-dir");
        assert!(o.exists && o.is_dir && o.accessible && !o.control_socket && o.entries.is_empty());
        let o = observe_pipe_dir(&dir.path().join("nope"), "default");
        assert!(!o.exists && !o.is_dir && !o.accessible);
    }

    #[test]
    fn a_stale_socket_and_pid_file_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("control")).unwrap();
        std::fs::write(dir.path().join(PID_FILE), "999999999\n").unwrap();
        let o = observe_pipe_dir(dir.path(), "default");
        assert!(o.control_socket);
        assert_eq!(o.daemon_pid, Some(999_999_999));
        assert_eq!(o.daemon_pid_running, Some(false));
        assert_eq!(o.entries, vec!["control".to_string(), PID_FILE.to_string()]);
    }
}
