//! The host's side of a result: the worker's cgroup and the node over its measuring window (CPU quota and
//! throttling, CPU used, memory limit, peak and OOM kills, load), and the GPU's settings as NVML reads them
//! (compute mode, MIG mode) beside the compute policy's time-slice. Serde types, and the pure judgement of what in
//! them puts a worker's figures in doubt. `cgroup` and `telemetry` fill them; `analysis` turns the problems into
//! warnings.

use serde::{Deserialize, Serialize};

/// A worker's host conditions over its measuring window, as stored with its result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostConditions {
    pub cgroup_version: u8,
    pub cpu_quota: Option<f64>,
    pub cpus: Option<String>,
    /// Throttled periods and seconds during the window.
    pub throttled_periods: Option<u64>,
    pub throttled_s: Option<f64>,
    pub window_s: f64,
    /// CPU seconds the whole cgroup (the Pod's container: the worker and its command) used during the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_cpu_s: Option<f64>,
    /// CPU seconds the worker process itself used during the window (its waiting, its telemetry, its reading of
    /// a command's lines): what sharebench costs beside a tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cpu_s: Option<f64>,
    pub memory_limit_bytes: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
    /// OOM kills in its cgroup during the window.
    pub oom_kills: Option<u64>,
    /// The node's 1-minute load average at the window's end, and its CPU count.
    pub load_1m: Option<f64>,
    pub node_cpus: Option<u32>,
    /// Share of the node's CPU time over the window that was busy, and that the hypervisor took for other
    /// guests (steal: on a cloud VM, its neighbours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_busy_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_steal_share: Option<f64>,
    /// The GPU's settings as this worker found them (read only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_settings: Option<GpuSettings>,
}

/// What the GPU is set to: none of it is changed by sharebench, all of it changes what sharing measures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSettings {
    /// NVML's compute mode: `default`, `exclusive_process` (what an MPS daemon wants), `prohibited`.
    pub compute_mode: Option<String>,
    /// MIG mode now (`enabled`, `disabled`), where the GPU supports MIG.
    pub mig_mode: Option<String>,
    /// The compute policy's time-slice as `nvidia-smi compute-policy -l` prints it, where it could be read.
    pub timeslice: Option<String>,
    /// Why a setting could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Share of its window a worker may spend throttled before its figures are in doubt.
pub const THROTTLED_SHARE_LIMIT: f64 = 0.02;
/// Share of the node's CPU time the hypervisor may take before the figures are in doubt.
pub const STEAL_SHARE_LIMIT: f64 = 0.02;

impl HostConditions {
    /// CPUs the worker used on average over its window (`None` where not measured).
    pub fn worker_cpus(&self) -> Option<f64> {
        (self.window_s > 0.0).then_some(self.worker_cpu_s? / self.window_s)
    }

    /// What in these conditions puts a worker's figures in doubt, each with its cause and fix.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let (Some(throttled), true) = (self.throttled_s, self.window_s > 0.0) {
            let share = throttled / self.window_s;
            if share > THROTTLED_SHARE_LIMIT {
                let quota = self.cpu_quota.map(|q| format!("{q} CPU")).unwrap_or_else(|| "its quota".into());
                out.push(format!(
                    "throttled by its CPU limit ({quota}) for {:.0}% of its window ({:.2} of {:.2} s): the figures measure the CPU quota, not the GPU; drop limits.cpu, or raise it to at least 1.5 per stream (a spinning worker takes 1 CPU per stream; below 1.5 `--sync auto` waits blocking, which needs about 0.5)",
                    share * 100.0,
                    throttled,
                    self.window_s
                ));
            }
        }
        if let Some(n) = self.oom_kills.filter(|&n| n > 0) {
            out.push(format!(
                "{n} OOM kill(s) in its cgroup during the window: raise limits.memory (peak {})",
                self.memory_peak_bytes.map(|b| format!("{} MiB", b >> 20)).unwrap_or_else(|| "unknown".into())
            ));
        }
        if let Some(steal) = self.node_steal_share.filter(|&s| s > STEAL_SHARE_LIMIT) {
            out.push(format!(
                "the hypervisor took {:.0}% of the node's CPU time during the window (steal): the figures move with the host's other guests; measure on a node with dedicated CPUs, or repeat and compare",
                steal * 100.0
            ));
        }
        if let Some(g) = &self.gpu_settings {
            if g.compute_mode.as_deref() == Some("prohibited") {
                out.push("the GPU's compute mode is prohibited: no context can run on it".into());
            }
        }
        out
    }

    /// What in these conditions a reader should know without doubting the figures.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(g) = &self.gpu_settings {
            if g.mig_mode.as_deref() == Some("enabled") {
                out.push("the GPU is in MIG mode: the figures are of one MIG instance, not the whole GPU".into());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stolen_cpu_and_a_prohibited_gpu_are_problems_and_mig_a_note() {
        let quiet = HostConditions { window_s: 10.0, node_steal_share: Some(0.001), ..Default::default() };
        assert!(quiet.problems().is_empty() && quiet.notes().is_empty());
        let stolen = HostConditions { node_steal_share: Some(0.08), ..quiet.clone() };
        assert!(
            stolen.problems()[0].contains("the hypervisor took 8% of the node's CPU time"),
            "{:?}",
            stolen.problems()
        );
        let settings = |mode: &str, mig: &str| GpuSettings {
            compute_mode: Some(mode.into()),
            mig_mode: Some(mig.into()),
            ..Default::default()
        };
        let prohibited = HostConditions { gpu_settings: Some(settings("prohibited", "disabled")), ..quiet.clone() };
        assert!(prohibited.problems()[0].contains("compute mode is prohibited"));
        let mig = HostConditions { gpu_settings: Some(settings("default", "enabled")), ..quiet.clone() };
        assert!(mig.problems().is_empty());
        assert!(mig.notes()[0].contains("MIG mode"), "{:?}", mig.notes());
        // The worker's CPUs over its window.
        let worker = HostConditions { worker_cpu_s: Some(0.1), ..quiet };
        assert_eq!(worker.worker_cpus(), Some(0.01));
    }
}
