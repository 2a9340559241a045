//! Were a run's conditions what its numbers claim? Judged from the telemetry its worker 0 sampled
//! (`result::telemetry`): the SM clock held still while the GPU was busy (within [`CLOCK_TOLERANCE`]), no power
//! or thermal throttling, and no process on the GPU that was not part of the run (another tenant of a shared
//! node would bend every ratio). Pure.

use crate::result::telemetry::Telemetry;
use serde::Serialize;

/// The SM clock may move this much (share of its highest busy value) before a run is flagged.
pub const CLOCK_TOLERANCE: f64 = 0.05;

/// NVML clock-event reasons that slow the GPU down, with their names (`nvmlClocksThrottleReason*`). Idle,
/// application clocks, sync boost and display clocks are not slowdowns of a busy GPU and are left out.
pub const SLOWDOWNS: [(u64, &str); 5] = [
    (0x4, "power cap (software)"),
    (0x8, "hardware slowdown"),
    (0x20, "thermal (software)"),
    (0x40, "thermal (hardware)"),
    (0x80, "power brake (hardware)"),
];

/// What the telemetry of one group says about its conditions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conditions {
    /// `nvml`, or why there is no telemetry.
    pub source: String,
    pub samples: usize,
    /// SM clock over the samples with the GPU busy: lowest and highest, MHz.
    pub sm_mhz: Option<(u32, u32)>,
    /// NVML's utilisation (share of time a kernel ran) averaged over the samples: a low value with a slow
    /// workload says the host, not the GPU, set its pace (a Python process launching small kernels).
    pub gpu_busy_pct: Option<f64>,
    pub max_power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub max_temp_c: Option<u32>,
    /// Slowdown reasons seen, with the number of samples showing each.
    pub slowdowns: Vec<(String, usize)>,
    /// Processes on the GPU that were not part of the run (`pid 1234 python3, 512 MiB`); `None` when the
    /// telemetry's pids belong to another PID namespace and cannot be told apart.
    pub other_processes: Option<Vec<String>>,
    /// What is wrong, in words (empty: the conditions held).
    pub problems: Vec<String>,
}

/// Judges `t`; `run_pids` are the pids of the run's workers and their commands (as the workers see them).
pub fn judge(t: &Telemetry, run_pids: &[u32]) -> Conditions {
    let busy: Vec<_> = t.samples.iter().filter(|s| s.gpu_util_pct.unwrap_or(0) > 0).collect();
    let clocks: Vec<u32> = busy.iter().filter_map(|s| s.sm_mhz).collect();
    let sm_mhz = clocks.iter().min().zip(clocks.iter().max()).map(|(lo, hi)| (*lo, *hi));
    let watts = |mw: u32| mw as f64 / 1000.0;
    let slowdowns: Vec<(String, usize)> = SLOWDOWNS
        .iter()
        .filter_map(|(bit, name)| {
            let n = t.samples.iter().filter(|s| s.throttle.is_some_and(|r| r & bit != 0)).count();
            (n > 0).then(|| (name.to_string(), n))
        })
        .collect();
    let utilisation: Vec<f64> = t.samples.iter().filter_map(|s| s.gpu_util_pct).map(f64::from).collect();
    let gpu_busy_pct = (!utilisation.is_empty()).then(|| utilisation.iter().sum::<f64>() / utilisation.len() as f64);
    // The telemetry's pids are this namespace's when the sampler, or a worker's command, is among them.
    let attributable = t.own_pid_listed || t.processes.iter().any(|p| run_pids.contains(&p.pid));
    let other_processes = attributable.then(|| {
        // One line per pid: NVML lists a process once per kind (compute, graphics) it holds.
        let mut by_pid: std::collections::BTreeMap<u32, (&str, Option<u64>)> = Default::default();
        for p in t.processes.iter().filter(|p| !run_pids.contains(&p.pid)) {
            let comm = p.comm.as_deref().unwrap_or("?");
            if !comm.starts_with("nvidia-cuda-mps") {
                let seen = by_pid.entry(p.pid).or_insert((comm, None));
                seen.1 = seen.1.max(p.max_used_bytes);
            }
        }
        by_pid
            .into_iter()
            .map(|(pid, (comm, used))| {
                let mib = used.map(|b| format!(", {} MiB", b >> 20)).unwrap_or_default();
                format!("pid {pid} {comm}{mib}")
            })
            .collect::<Vec<_>>()
    });
    let mut problems = Vec::new();
    if let Some((lo, hi)) = sm_mhz {
        if hi > 0 && (hi - lo) as f64 / hi as f64 > CLOCK_TOLERANCE {
            problems.push(format!(
                "SM clock moved between {lo} and {hi} MHz while busy (more than {:.0}%)",
                CLOCK_TOLERANCE * 100.0
            ));
        }
    }
    for (name, n) in &slowdowns {
        problems.push(format!("{name} in {n} of {} samples", t.samples.len()));
    }
    if let Some(others) = other_processes.as_ref().filter(|o| !o.is_empty()) {
        problems.push(format!("{} other process(es) on the GPU: {}", others.len(), others.join("; ")));
    }
    Conditions {
        source: t.source.clone(),
        samples: t.samples.len(),
        sm_mhz,
        gpu_busy_pct,
        max_power_w: t.samples.iter().filter_map(|s| s.power_mw).max().map(watts),
        power_limit_w: t.samples.iter().filter_map(|s| s.power_limit_mw).max().map(watts),
        max_temp_c: t.samples.iter().filter_map(|s| s.temp_c).max(),
        slowdowns,
        other_processes,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::telemetry::{GpuProcess, Sample};

    fn sample(t_ms: u32, sm: u32, throttle: u64, util: u32) -> Sample {
        Sample {
            t_ms,
            sm_mhz: Some(sm),
            mem_mhz: Some(2619),
            throttle: Some(throttle),
            power_mw: Some(350_000),
            power_limit_mw: Some(700_000),
            temp_c: Some(40),
            gpu_util_pct: Some(util),
            mem_util_pct: Some(0),
        }
    }

    fn process(pid: u32, comm: &str) -> GpuProcess {
        GpuProcess {
            pid,
            kind: "compute".into(),
            comm: Some(comm.into()),
            max_used_bytes: Some(512 << 20),
            first_ms: 0,
            last_ms: 100,
        }
    }

    fn telemetry(samples: Vec<Sample>, processes: Vec<GpuProcess>, own_pid_listed: bool) -> Telemetry {
        Telemetry {
            source: "nvml".into(),
            sampler: "worker 0".into(),
            interval_ms: 100,
            samples,
            processes,
            own_pid: 10,
            own_pid_listed,
        }
    }

    #[test]
    fn a_steady_run_of_its_own_holds() {
        // Idle before the first kernel (low clock, 0% busy) does not count as a clock move.
        let t = telemetry(
            vec![sample(0, 345, 0x1, 0), sample(100, 1980, 0, 100), sample(200, 1980, 0, 100)],
            vec![process(10, "sharebench"), process(11, "sharebench"), process(5, "nvidia-cuda-mps")],
            true,
        );
        let c = judge(&t, &[10, 11]);
        assert_eq!(c.problems, Vec::<String>::new());
        assert_eq!((c.sm_mhz, c.max_power_w, c.power_limit_w), (Some((1980, 1980)), Some(350.0), Some(700.0)));
        assert_eq!(c.other_processes, Some(vec![]));
    }

    #[test]
    fn clocks_throttling_and_a_foreign_tenant_are_flagged() {
        let t = telemetry(
            vec![sample(0, 1980, 0, 100), sample(100, 1755, 0x4, 100), sample(200, 1980, 0x4 | 0x20, 100)],
            vec![process(10, "sharebench"), process(4242, "python3")],
            true,
        );
        let c = judge(&t, &[10]);
        assert_eq!(c.problems.len(), 4, "{:?}", c.problems);
        assert!(c.problems[0].contains("between 1755 and 1980 MHz"));
        assert!(c.problems.iter().any(|p| p == "power cap (software) in 2 of 3 samples"));
        assert!(c.problems.iter().any(|p| p == "thermal (software) in 1 of 3 samples"));
        assert!(c.problems.iter().any(|p| p.contains("1 other process(es) on the GPU: pid 4242 python3, 512 MiB")));
    }

    #[test]
    fn a_process_listed_under_two_kinds_is_one_other_process() {
        let graphics =
            GpuProcess { kind: "graphics".into(), max_used_bytes: Some(794 << 20), ..process(588, "python3") };
        let t = telemetry(
            vec![sample(0, 1980, 0, 100)],
            vec![process(10, "sharebench"), process(588, "python3"), graphics],
            true,
        );
        assert_eq!(judge(&t, &[10]).other_processes, Some(vec!["pid 588 python3, 794 MiB".to_string()]));
        // A worker's command is its own, not another process.
        assert_eq!(judge(&t, &[10, 588]).other_processes, Some(vec![]));
    }

    #[test]
    fn pids_of_another_namespace_are_not_attributed() {
        // In a Pod NVML lists the node's pids: the sampler is not among them under its own pid.
        let t = telemetry(vec![sample(0, 1980, 0, 100)], vec![process(2219, "?"), process(2226, "?")], false);
        let c = judge(&t, &[1]);
        assert_eq!(c.other_processes, None);
        assert!(c.problems.is_empty());
    }

    #[test]
    fn a_workers_command_on_the_gpu_makes_the_pids_attributable() {
        // run --exec releases the worker's own context: only its command (pid 588) holds the GPU.
        let t = telemetry(
            vec![sample(0, 1980, 0, 20), sample(100, 1980, 0, 30)],
            vec![process(588, "python3"), process(4242, "python3")],
            false,
        );
        let c = judge(&t, &[10, 588]);
        assert_eq!(c.other_processes, Some(vec!["pid 4242 python3, 512 MiB".to_string()]));
        assert_eq!(c.gpu_busy_pct, Some(25.0));
    }
}
