//! The host's side of a worker's conditions: its own cgroup's CPU quota, the CPUs it may run on, how often and
//! how long the quota throttled it over the measuring window, its memory limit, peak and OOM kills (cgroup v2,
//! and v1 where that is what the node has), and the node's load. A Pod's `limits.cpu` becomes such a quota, and a
//! worker that waits for its GPU spins on its CPU: throttled, it measures its CPU budget and calls it sharing.
//!
//! Parsing is pure (the file texts in, numbers out; tested on texts from v1 and v2 nodes); [`read`] is the one
//! effect, reading `/proc/self/cgroup`, the cgroup files it names (or the root of the cgroup mount, which is the
//! container's own cgroup where the runtime gives it a cgroup namespace) and `/proc/loadavg`.

pub use crate::result::host::HostConditions;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What the cgroup says at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// 2, or 1.
    pub version: u8,
    /// The CPU quota in CPUs (`cpu.max` 50000 100000: 0.5); `None`: no quota.
    pub cpu_quota: Option<f64>,
    /// The CPUs it may run on (`cpuset.cpus.effective`), as the kernel lists them.
    pub cpus: Option<String>,
    /// Periods in which the quota throttled it, and the time throttled (us), since the cgroup began.
    pub throttled_periods: Option<u64>,
    pub throttled_us: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    /// CPU the cgroup used since it began (us).
    pub cpu_usage_us: Option<u64>,
    /// The node's CPU time so far (`/proc/stat`), for its busy and stolen shares over the window.
    pub node_cpu: Option<NodeCpu>,
}

/// The node's CPU time from `/proc/stat`'s `cpu` line, in clock ticks, all CPUs together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCpu {
    pub total: u64,
    /// Not idle and not waiting for I/O.
    pub busy: u64,
    /// Taken by the hypervisor for other guests (a cloud VM's noisy neighbours).
    pub steal: u64,
}

/// `/proc/stat`'s first line: `cpu user nice system idle iowait irq softirq steal guest guest_nice`.
pub fn parse_proc_stat(text: &str) -> Option<NodeCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().ok()).collect::<Option<_>>()?;
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // guest and guest_nice are already counted in user and nice.
    let total: u64 = (0..8).map(get).sum();
    let (idle, iowait, steal) = (get(3), get(4), get(7));
    Some(NodeCpu { total, busy: total - idle - iowait - steal, steal })
}

/// The conditions between two snapshots of one cgroup, `window_s` apart; `worker_cpu_s` is the worker's own CPU
/// time over the window.
pub fn conditions_between(
    start: &Snapshot,
    end: &Snapshot,
    window_s: f64,
    load: Option<(f64, u32)>,
    worker_cpu_s: Option<f64>,
) -> HostConditions {
    let delta = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
    let node = start.node_cpu.zip(end.node_cpu).map(|(a, b)| {
        let total = b.total.saturating_sub(a.total).max(1) as f64;
        (b.busy.saturating_sub(a.busy) as f64 / total, b.steal.saturating_sub(a.steal) as f64 / total)
    });
    HostConditions {
        cgroup_version: end.version,
        cpu_quota: end.cpu_quota,
        cpus: end.cpus.clone(),
        throttled_periods: delta(start.throttled_periods, end.throttled_periods),
        throttled_s: delta(start.throttled_us, end.throttled_us).map(|us| us as f64 / 1e6),
        window_s,
        cgroup_cpu_s: delta(start.cpu_usage_us, end.cpu_usage_us).map(|us| us as f64 / 1e6),
        worker_cpu_s,
        memory_limit_bytes: end.memory_limit_bytes,
        memory_peak_bytes: end.memory_peak_bytes,
        oom_kills: delta(start.oom_kills, end.oom_kills),
        load_1m: load.map(|l| l.0),
        node_cpus: load.map(|l| l.1),
        node_busy_share: node.map(|n| n.0),
        node_steal_share: node.map(|n| n.1),
        gpu_settings: None,
    }
}

/// CPU seconds this process has used so far (user and system, all threads).
pub fn own_cpu_s() -> Option<f64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// The cgroup paths of this process from `/proc/self/cgroup`: the v2 path (`0::/path`), and per v1 controller.
pub fn own_paths(proc_self_cgroup: &str) -> (Option<String>, Vec<(String, String)>) {
    let (mut v2, mut v1) = (None, Vec::new());
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        if id == "0" && controllers.is_empty() {
            v2 = Some(path.to_string());
        } else {
            for c in controllers.split(',') {
                v1.push((c.to_string(), path.to_string()));
            }
        }
    }
    (v2, v1)
}

/// `cpu.max` (`max 100000` or `50000 100000`) as CPUs.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    let (quota, period) = (words.next()?, words.next()?.parse::<f64>().ok()?);
    match quota {
        "max" => None,
        q => Some(q.parse::<f64>().ok()? / period),
    }
}

/// v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` as CPUs (-1: no quota).
pub fn parse_cfs(quota_us: &str, period_us: &str) -> Option<f64> {
    let quota: i64 = quota_us.trim().parse().ok()?;
    let period: f64 = period_us.trim().parse().ok()?;
    (quota > 0 && period > 0.0).then(|| quota as f64 / period)
}

/// One `key value` of a flat keyed file (`cpu.stat`, `memory.events`, `memory.oom_control`).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key).and_then(|rest| rest.trim().parse().ok()))
}

/// A limit file's bytes (`max`, or v1's huge "unlimited" number, as `None`).
pub fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n < 1 << 60).then_some(n)
}

/// `/proc/loadavg`'s 1-minute load.
pub fn parse_load(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The directory of `path` under `mount`, or the mount itself where that is missing (in a container with its own
/// cgroup namespace the path is `/`; without one, the host's path may not be visible).
fn dir_of(mount: &Path, path: &str) -> PathBuf {
    let dir = mount.join(path.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        mount.to_path_buf()
    }
}

fn read_file(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name)).ok()
}

/// This process's cgroup now (`None` where no cgroup can be read).
pub fn read() -> Option<Snapshot> {
    let (v2, v1) = own_paths(&std::fs::read_to_string("/proc/self/cgroup").ok()?);
    let root = Path::new("/sys/fs/cgroup");
    if let Some(path) = v2.filter(|_| root.join("cgroup.controllers").exists()) {
        let dir = dir_of(root, &path);
        let file = |name| read_file(&dir, name);
        let stat = file("cpu.stat").unwrap_or_default();
        return Some(Snapshot {
            version: 2,
            cpu_quota: file("cpu.max").as_deref().and_then(parse_cpu_max),
            cpus: file("cpuset.cpus.effective").map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            throttled_periods: keyed(&stat, "nr_throttled"),
            throttled_us: keyed(&stat, "throttled_usec"),
            memory_limit_bytes: file("memory.max").as_deref().and_then(parse_limit),
            memory_peak_bytes: file("memory.peak").as_deref().and_then(parse_limit),
            oom_kills: file("memory.events").as_deref().and_then(|t| keyed(t, "oom_kill")),
            cpu_usage_us: keyed(&stat, "usage_usec"),
            node_cpu: read_node_cpu(),
        });
    }
    let controller = |name: &str| {
        let path = v1.iter().find(|(c, _)| c == name).map(|(_, p)| p.as_str())?;
        Some(dir_of(&root.join(name), path))
    };
    let cpu = controller("cpu");
    let memory = controller("memory");
    let cpu_file = |name| cpu.as_deref().and_then(|d| read_file(d, name));
    let mem_file = |name| memory.as_deref().and_then(|d| read_file(d, name));
    let stat = cpu_file("cpu.stat").unwrap_or_default();
    Some(Snapshot {
        version: 1,
        cpu_quota: match (cpu_file("cpu.cfs_quota_us"), cpu_file("cpu.cfs_period_us")) {
            (Some(q), Some(p)) => parse_cfs(&q, &p),
            _ => None,
        },
        cpus: controller("cpuset")
            .and_then(|d| read_file(&d, "cpuset.effective_cpus"))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
        throttled_periods: keyed(&stat, "nr_throttled"),
        throttled_us: keyed(&stat, "throttled_time").map(|ns| ns / 1000),
        memory_limit_bytes: mem_file("memory.limit_in_bytes").as_deref().and_then(parse_limit),
        memory_peak_bytes: mem_file("memory.max_usage_in_bytes").as_deref().and_then(parse_limit),
        oom_kills: mem_file("memory.oom_control").as_deref().and_then(|t| keyed(t, "oom_kill")),
        cpu_usage_us: controller("cpuacct")
            .and_then(|d| read_file(&d, "cpuacct.usage"))
            .and_then(|t| t.trim().parse::<u64>().ok())
            .map(|ns| ns / 1000),
        node_cpu: read_node_cpu(),
    })
}

fn read_node_cpu() -> Option<NodeCpu> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The node's load and CPU count now (the CPUs online, not what this process's quota leaves it: the
/// standard library's `available_parallelism` counts the quota, which is what is being judged).
pub fn read_load() -> Option<(f64, u32)> {
    let load = parse_load(&std::fs::read_to_string("/proc/loadavg").ok()?)?;
    let online = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN).ok().flatten()?;
    Some((load, online as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_paths_on_v1_hybrid_and_v2_nodes() {
        let v1 = "9:name=systemd:/\n4:memory:/kubepods/pod1/abc\n2:cpu,cpuacct:/kubepods/pod1/abc\n0::/\n";
        let (v2, controllers) = own_paths(v1);
        assert_eq!(v2.as_deref(), Some("/"));
        assert!(controllers.contains(&("cpu".into(), "/kubepods/pod1/abc".into())));
        assert!(controllers.contains(&("cpuacct".into(), "/kubepods/pod1/abc".into())));
        let (v2, controllers) = own_paths("0::/kubepods.slice/kubepods-pod1.slice/cri-abc.scope\n");
        assert_eq!(v2.as_deref(), Some("/kubepods.slice/kubepods-pod1.slice/cri-abc.scope"));
        assert!(controllers.is_empty());
        assert_eq!(own_paths(""), (None, vec![]));
    }

    #[test]
    fn quotas_limits_and_counters_parse_on_both_versions() {
        // A Pod's limits.cpu: 500m, as kubelet writes it (v2) and as v1 has it.
        assert_eq!(parse_cpu_max("50000 100000\n"), Some(0.5));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cfs("50000\n", "100000\n"), Some(0.5));
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        let v2_stat = "usage_usec 4012345\nuser_usec 3000000\nsystem_usec 1012345\nnr_periods 40\nnr_throttled 44\nthrottled_usec 2270000\n";
        assert_eq!((keyed(v2_stat, "nr_throttled"), keyed(v2_stat, "throttled_usec")), (Some(44), Some(2_270_000)));
        let v1_stat = "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n";
        assert_eq!(keyed(v1_stat, "throttled_time"), Some(0));
        assert_eq!(keyed("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", "oom_kill"), Some(1));
        assert_eq!(keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"), Some(3));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None, "v1's 'unlimited'");
        assert_eq!(parse_limit("2147483648\n"), Some(2 << 30));
        assert_eq!(parse_load("3.52 2.10 1.05 2/812 4242\n"), Some(3.52));
        assert_eq!(keyed("", "nr_throttled"), None, "a missing file reads as nothing, not zero");
        let stat = "cpu  100 5 50 800 20 3 2 20 7 0\ncpu0 50 2 25 400 10 1 1 10 0 0\nintr 12\n";
        assert_eq!(parse_proc_stat(stat), Some(NodeCpu { total: 1000, busy: 160, steal: 20 }));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }

    #[test]
    fn a_worker_throttled_for_more_than_a_small_share_of_its_window_is_flagged_with_the_fix() {
        // Measured on the H200 (facts, 2026-12-01): cpu.max 50000/100000, 2.27 s throttled of a 4 s run.
        let start = Snapshot {
            version: 2,
            cpu_quota: Some(0.5),
            throttled_periods: Some(3),
            throttled_us: Some(100_000),
            ..Default::default()
        };
        let end = Snapshot { throttled_periods: Some(47), throttled_us: Some(2_370_000), ..start.clone() };
        let c = conditions_between(&start, &end, 4.0, Some((1.5, 16)), None);
        assert_eq!((c.node_busy_share, c.node_steal_share), (None, None), "no /proc/stat in these snapshots");
        assert_eq!((c.throttled_periods, c.throttled_s), (Some(44), Some(2.27)));
        let problems = c.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("throttled by its CPU limit (0.5 CPU) for 57% of its window"), "{}", problems[0]);
        assert!(problems[0].contains("drop limits.cpu, or raise it to at least 1.5 per stream"), "{}", problems[0]);
        // Unlimited, or barely throttled: not flagged.
        let quiet =
            conditions_between(&start, &Snapshot { throttled_us: Some(110_000), ..start.clone() }, 4.0, None, None);
        assert!(quiet.problems().is_empty());
        assert!(conditions_between(&Snapshot::default(), &Snapshot::default(), 4.0, None, None).problems().is_empty());
        // An OOM kill during the window.
        let oom = conditions_between(
            &Snapshot { oom_kills: Some(0), ..Default::default() },
            &Snapshot { oom_kills: Some(1), memory_peak_bytes: Some(512 << 20), ..Default::default() },
            4.0,
            None,
            None,
        );
        assert!(oom.problems()[0].contains("1 OOM kill(s)") && oom.problems()[0].contains("peak 512 MiB"));
    }

    #[test]
    fn this_process_has_readable_conditions_or_none() {
        // Whatever this machine's layout (v1, hybrid, v2), reading never fails loudly.
        if let Some(s) = read() {
            assert!(s.version == 1 || s.version == 2);
        }
        let _ = read_load();
    }
}
