//! Facts about the host process the result must carry: hostname, PID and IPC namespaces, the NVIDIA kernel
//! module version, the Kubernetes pod. Reads `/proc` and the environment; parsing is split out and pure.

use crate::result::HostIdentity;

/// Parses the inode out of a namespace link such as `pid:[4026531836]`.
pub fn parse_namespace_link(link: &str) -> Option<u64> {
    let inner = link.split_once(":[")?.1.strip_suffix(']')?;
    inner.parse().ok()
}

/// Inode of one of this process's namespaces (`pid`, `ipc`, ...), when `/proc` shows it.
pub fn namespace_inode(kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
    parse_namespace_link(&link.to_string_lossy())
}

/// Parses the version out of `/proc/driver/nvidia/version`
/// (`NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu ...`).
pub fn parse_driver_version(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("NVRM version:"))?;
    let after = line.split("Kernel Module").nth(1).unwrap_or(line);
    after
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()) && w.contains('.'))
        .map(str::to_string)
}

/// The NVIDIA kernel module version, when the driver exposes it here.
pub fn driver_version() -> Option<String> {
    parse_driver_version(&std::fs::read_to_string("/proc/driver/nvidia/version").ok()?)
}

pub fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_else(|_| "unknown".into())
}

/// The pod this runs in, from the Downward API / Job variables, e.g. `sharebench-2` (index 2).
pub fn pod_name() -> Option<String> {
    std::env::var("POD_NAME").ok().filter(|s| !s.is_empty())
}

/// This process, as a result file names it.
pub fn identity() -> HostIdentity {
    HostIdentity {
        hostname: hostname(),
        pid: std::process::id(),
        pid_namespace: namespace_inode("pid"),
        ipc_namespace: namespace_inode("ipc"),
        pod: pod_name(),
    }
}

/// Wall-clock time in Unix nanoseconds.
/// An id unique to one invocation of a command that names runs (`plan`): the wall clock in milliseconds, in
/// base 36 (8 characters until the year 2059), so two invocations never share their runs' ids.
pub fn invocation_id() -> String {
    // Within one process the ids rise strictly, even when two are asked for in the same millisecond.
    static LAST_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = unix_now_ns() / 1_000_000;
    let previous = LAST_MS.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
    let mut n = if previous >= now { LAST_MS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 } else { now };
    let mut digits = Vec::new();
    while n > 0 || digits.is_empty() {
        digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
        n /= 36;
    }
    digits.reverse();
    String::from_utf8(digits).expect("ASCII digits")
}

pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_invocations_never_share_an_id() {
        let first = invocation_id();
        let second = invocation_id();
        assert_ne!(first, second, "asked for in the same millisecond, still apart");
        assert_eq!(first.len(), 8, "{first}");
        assert!(first.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }

    #[test]
    fn namespace_links_parse() {
        assert_eq!(parse_namespace_link("pid:[4026531836]"), Some(4026531836));
        assert_eq!(parse_namespace_link("pid:4026531836"), None);
        assert_eq!(parse_namespace_link("ipc:[x]"), None);
    }

    #[test]
    fn driver_version_parses_from_the_proc_file() {
        let text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.159.04  Thu Oct  2 00:00:00 UTC 2025\nGCC version:  gcc 12\n";
        assert_eq!(parse_driver_version(text).as_deref(), Some("580.159.04"));
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build\n";
        assert_eq!(parse_driver_version(open).as_deref(), Some("570.86.15"));
        assert_eq!(parse_driver_version("garbage"), None);
    }

    #[test]
    fn this_process_has_a_pid_namespace() {
        assert!(namespace_inode("pid").is_some());
        assert_eq!(identity().pid, std::process::id());
    }
}
