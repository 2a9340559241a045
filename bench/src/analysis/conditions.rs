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

/// Judges `t`; `run_pids` are the pids of the run's workers (as they see themselves).
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
    let other_processes = t.own_pid_listed.then(|| {
        t.processes
            .iter()
            .filter(|p| !run_pids.contains(&p.pid))
            .filter(|p| !p.comm.as_deref().is_some_and(|c| c.starts_with("nvidia-cuda-mps")))
            .map(|p| {
                let mib = p.max_used_bytes.map(|b| format!(", {} MiB", b >> 20)).unwrap_or_default();
                format!("pid {} {}{mib}", p.pid, p.comm.as_deref().unwrap_or("?"))
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
    fn pids_of_another_namespace_are_not_attributed() {
        // In a Pod NVML lists the node's pids: the sampler is not among them under its own pid.
        let t = telemetry(vec![sample(0, 1980, 0, 100)], vec![process(2219, "?"), process(2226, "?")], false);
        let c = judge(&t, &[1]);
        assert_eq!(c.other_processes, None);
        assert!(c.problems.is_empty());
    }
}
