//! GPU telemetry stored with a result: what the GPU's clocks, throttle reasons, power, temperature and utilisation
//! were while the worker measured, and which processes used the GPU. Sampled through NVML by one worker per run
//! (worker 0) off the measuring thread (`crate::telemetry`); judged by `analysis::conditions`. Serde types only.

use serde::{Deserialize, Serialize};

/// Telemetry of one measuring window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Telemetry {
    /// `nvml`, or why nothing was sampled (`unavailable: ...`).
    pub source: String,
    /// Who sampled (`worker 0`).
    pub sampler: String,
    pub interval_ms: u32,
    pub samples: Vec<Sample>,
    /// Every process NVML listed on the GPU during the window.
    pub processes: Vec<GpuProcess>,
    /// The sampler's own pid as it sees itself, and whether NVML listed it: NVML reports pids of the node's PID
    /// namespace, so only when it lists the sampler under its own pid can other pids be attributed.
    pub own_pid: u32,
    pub own_pid_listed: bool,
}

impl Telemetry {
    /// Telemetry that could not be taken, and why.
    pub fn unavailable(sampler: &str, why: String) -> Telemetry {
        Telemetry {
            source: format!("unavailable: {why}"),
            sampler: sampler.into(),
            interval_ms: 0,
            samples: vec![],
            processes: vec![],
            own_pid: std::process::id(),
            own_pid_listed: false,
        }
    }
}

/// One sample; a field NVML could not read is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the worker started measuring.
    pub t_ms: u32,
    pub sm_mhz: Option<u32>,
    pub mem_mhz: Option<u32>,
    /// NVML clock-event (throttle) reasons, `nvmlClocksThrottleReason*` bits.
    pub throttle: Option<u64>,
    pub power_mw: Option<u32>,
    pub power_limit_mw: Option<u32>,
    pub temp_c: Option<u32>,
    pub gpu_util_pct: Option<u32>,
    pub mem_util_pct: Option<u32>,
}

/// A process NVML listed on the GPU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// `compute` (a context of its own, or the MPS server) or `mps-client`.
    pub kind: String,
    /// Its name where this process's `/proc` shows that pid (`nvidia-cuda-mps`, `python3`, ...).
    pub comm: Option<String>,
    /// The most GPU memory it held, in bytes.
    pub max_used_bytes: Option<u64>,
    /// When it was first and last seen, ms since the worker started measuring.
    pub first_ms: u32,
    pub last_ms: u32,
}
