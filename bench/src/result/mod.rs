//! The worker result format: one JSON document per worker process, versioned, with everything needed to trust
//! and re-analyse the measurement (who ran, on which GPU, with which configuration, verified how).
//!
//! A document holds one or more lanes: a normal worker has one; the single-process multi-stream ceiling has one
//! per CUDA stream. Each lane carries its exact latency histogram and its per-kernel records. This module owns
//! the serde types and their (de)serialization only; writing files is `fsio`'s job.

pub mod histogram;
pub mod host;
pub mod memory;
pub mod records;
pub mod telemetry;
pub mod tenant;

use crate::workload::KernelShape;
use serde::{Deserialize, Serialize};

/// Marker stored as the first field, so results can be picked out of mixed log streams.
pub const FORMAT: &str = "sharebench-result";
/// Bumped whenever a field changes meaning; readers refuse versions they do not know.
/// 2: `telemetry` (GPU clocks, throttling, power, processes during the run).
/// 3: foreign commands as workloads (`run --exec`): `tenant`, `config.command`, lanes without device stamps.
/// 4: `config.repeat` (which repeat of its configuration a worker measured; absent before: repeat 0),
///    `status.terminated` (the signal that stopped it), `host_conditions` (its cgroup over the window).
/// 5: `config.sync` (how a worker waited for its kernels), `host_conditions.cgroup_cpu_s` / `worker_cpu_s`
///    (CPU used over the window) and `host_conditions.gpu_settings` (compute mode, MIG mode, time-slice).
/// Versions 1 to 4 are still read.
pub const SCHEMA_VERSION: u32 = 5;
/// The oldest version this sharebench reads.
pub const OLDEST_READ: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerResult {
    pub format: String,
    pub schema_version: u32,
    pub sharebench_version: String,
    /// Identifies the run this worker belonged to; workers of one run are compared with each other.
    pub run_id: String,
    /// Sharing mode as given on the command line (`timeslice`, `mps`, `streams`, or a label of the user's).
    pub mode: String,
    /// The worker's group within a multi-group run (`plan` scenarios), if any.
    #[serde(default)]
    pub group: Option<String>,
    pub status: RunStatus,
    pub host: HostIdentity,
    pub gpu: GpuIdentity,
    pub config: RunConfig,
    /// How the sharing mode was verified (MPS membership, or its absence).
    pub sharing: SharingEvidence,
    pub started_unix_ns: u64,
    pub finished_unix_ns: u64,
    pub lanes: Vec<LaneResult>,
    /// GPU telemetry during the run (worker 0 samples it); absent in version 1 results and other workers'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<telemetry::Telemetry>,
    /// The foreign command this worker ran as its workload (`run --exec`), and how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<tenant::TenantReport>,
    /// The host's conditions over the measuring window: the worker's cgroup (CPU quota and throttling, memory
    /// limit, peak, OOM kills) and the node's load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_conditions: Option<host::HostConditions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStatus {
    /// True when every requested kernel ran and was recorded.
    pub complete: bool,
    /// Why the run stopped early, when it did.
    pub error: Option<String>,
    /// The signal that stopped the worker (SIGTERM: a Pod deleted, a node drained) and when (Unix ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<Terminated>,
}

/// A worker stopped by a signal: it wrote what it had recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terminated {
    pub signal: String,
    pub at_unix_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostIdentity {
    pub hostname: String,
    pub pid: u32,
    /// Inode of the PID namespace (`/proc/self/ns/pid`): with the pid, identifies the process across Pods.
    pub pid_namespace: Option<u64>,
    pub ipc_namespace: Option<u64>,
    /// Kubernetes pod name and completion index, when run in a Job.
    pub pod: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuIdentity {
    pub name: String,
    /// `GPU-xxxxxxxx-...`, as nvidia-smi prints it.
    pub uuid: String,
    pub ordinal: u32,
    pub compute_capability: (i32, i32),
    /// SMs of the device.
    pub sm_count: u32,
    /// SMs this context may use (smaller under an MPS active thread percentage).
    pub context_sm_count: u32,
    pub fp32_lanes_per_sm: Option<u32>,
    pub clock_khz: Option<u32>,
    pub memory_bytes: u64,
    /// `cuDriverGetVersion`, e.g. 13000.
    pub cuda_driver_api: i32,
    /// Kernel module version from `/proc/driver/nvidia/version`, e.g. `580.159.04`.
    pub driver_version: Option<String>,
    /// What this context may use of the device's memory: free and total as it saw them, the MPS limit in force
    /// and its source (absent in results written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_memory: Option<memory::ContextMemory>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The kernel launched; absent when the workload is a foreign command.
    #[serde(flatten)]
    pub shape: Option<KernelShape>,
    /// The foreign command run as the workload (`run --exec -- COMMAND`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Kernels to record per lane (closed loop), or
    pub kernels: Option<u64>,
    /// seconds to record per lane.
    pub duration_s: Option<f64>,
    /// Unrecorded kernels launched before the measurement.
    pub warmup: u32,
    /// Closed loop, or open loop at a rate (then record submit times are the intended starts).
    #[serde(default)]
    pub arrivals: crate::arrivals::Arrivals,
    /// Workers in the run (processes or streams) and this worker's index.
    pub workers: u32,
    pub worker_index: u32,
    /// CUDA streams in this process (more than 1 only for the multi-stream ceiling).
    pub streams: u32,
    /// Whether the workers met at a barrier before measuring.
    pub barrier: bool,
    /// CUDA_MPS_ACTIVE_THREAD_PERCENTAGE as this worker ran with it (the share of SMs it asked MPS for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mps_active_thread_percentage: Option<u32>,
    /// Which repeat of its configuration this worker measured (0-based): `compare --repeat` and `plan --repeat`
    /// run every mode again with fresh workers, interleaved; results of one run id with several repeats are
    /// summarised across them.
    #[serde(default)]
    pub repeat: u32,
    /// How the worker waited for each kernel (`spin`, `yield`, `blocking`) and why (`auto: ...`); absent for a
    /// command, and in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
    /// The Pods of this window whose commands ran alone, with no sharebench worker beside them (the shared
    /// window of `compare --observer-effect`): their results are in the run's `alone/`, and this group holds
    /// the others. Empty for every other run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alone_indices: Vec<u32>,
    /// The exact command line.
    pub command_line: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingVerdict {
    /// The CUDA context was found among the MPS server's clients.
    MpsJoined,
    /// A control daemon answered but this process is not its client: a silent fallback to time-slicing.
    MpsNotJoined,
    /// No MPS control daemon reachable: time-slicing.
    NoDaemon,
    /// Not checked (the mode label is unverified).
    Unverified,
}

impl SharingVerdict {
    /// The words `sharebench check` prints.
    pub fn label(self) -> &'static str {
        match self {
            SharingVerdict::MpsJoined => "mps: joined",
            SharingVerdict::MpsNotJoined => "mps: NOT joined (silent fallback to time-slicing)",
            SharingVerdict::NoDaemon => "no daemon: time-slicing",
            SharingVerdict::Unverified => "unverified",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingEvidence {
    pub verdict: SharingVerdict,
    /// How MPS membership was proven (`pid+namespace`, `exec-affinity+namespace`, ...; see `mps::membership`);
    /// absent unless joined, and in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
    /// The full check report (`sharebench check --json`), when a check ran.
    pub check: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaneResult {
    /// Worker index within the run (for streams: the stream's index).
    pub worker: u32,
    /// Recorded kernels (equals `records.count`).
    pub kernels: u64,
    /// Host latency (submit to completion) in ns, HdrHistogram V2+DEFLATE, base64.
    pub latency_histogram: String,
    pub records: records::EncodedRecords,
    /// Whether the records carry device times and SM counts (sharebench's kernels); a foreign command's
    /// requests have host times only, and their device fields are not measurements.
    #[serde(default = "device_stamped", skip_serializing_if = "is_device_stamped")]
    pub device_stamps: bool,
}

fn device_stamped() -> bool {
    true
}

fn is_device_stamped(stamped: &bool) -> bool {
    *stamped
}

impl WorkerResult {
    /// Serializes to one JSON line (no newline inside), the form both files and logs carry.
    pub fn to_json_line(&self) -> String {
        // Our types contain nothing serde_json cannot represent (no maps with non-string keys, no NaN floats
        // from user input reach here), so this cannot fail.
        serde_json::to_string(self).expect("result serializes")
    }

    /// Parses and checks the header fields a reader relies on.
    pub fn from_json(text: &str) -> Result<WorkerResult, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(format!("not a sharebench result (no \"format\": \"{FORMAT}\")"));
        }
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if (OLDEST_READ as u64..=SCHEMA_VERSION as u64).contains(&v) => {}
            Some(v) => {
                return Err(format!(
                    "schema_version {v} is not supported by this sharebench (reads {OLDEST_READ} to {SCHEMA_VERSION}); use the sharebench that wrote it"
                ))
            }
            None => return Err("schema_version is missing".into()),
        }
        let result: WorkerResult = serde_json::from_value(value).map_err(|e| format!("malformed result: {e}"))?;
        for lane in &result.lanes {
            if lane.kernels != lane.records.count {
                return Err(format!(
                    "lane {}: kernels {} != records.count {}",
                    lane.worker, lane.kernels, lane.records.count
                ));
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::workload::KernelKind;

    /// A small, valid result for tests elsewhere in the crate.
    pub fn sample_result() -> WorkerResult {
        let recs = vec![records::KernelRecord {
            submit_ns: 0,
            latency_ns: 700_000,
            device_start_ns: 1_000_000,
            device_end_ns: 1_600_000,
            sm_count: 132,
        }];
        let mut h = histogram::new_latency_histogram();
        histogram::record(&mut h, 700_000);
        WorkerResult {
            format: FORMAT.into(),
            schema_version: SCHEMA_VERSION,
            sharebench_version: "0.1.0".into(),
            run_id: "run-1".into(),
            mode: "timeslice".into(),
            group: None,
            status: RunStatus { complete: true, error: None, terminated: None },
            host: HostIdentity {
                hostname: "node".into(),
                pid: 42,
                pid_namespace: Some(4026531836),
                ipc_namespace: None,
                pod: None,
            },
            gpu: GpuIdentity {
                name: "NVIDIA H100 80GB HBM3".into(),
                uuid: "GPU-e370a465-49c4-8458-0000-000000000000".into(),
                ordinal: 0,
                compute_capability: (9, 0),
                sm_count: 132,
                context_sm_count: 132,
                fp32_lanes_per_sm: Some(128),
                clock_khz: Some(1_980_000),
                memory_bytes: 85_000_000_000,
                cuda_driver_api: 13000,
                driver_version: Some("580.159.04".into()),
                context_memory: None,
            },
            config: RunConfig {
                shape: Some(KernelShape { kernel: KernelKind::Fma, blocks: 132, threads: 256, iters: 1000, bytes: 0 }),
                command: None,
                kernels: Some(1),
                duration_s: None,
                warmup: 5,
                arrivals: crate::arrivals::Arrivals::Closed,
                workers: 1,
                worker_index: 0,
                streams: 1,
                barrier: false,
                mps_active_thread_percentage: None,
                repeat: 0,
                sync: Some("spin (auto: no CPU quota)".into()),
                alone_indices: vec![],
                command_line: vec!["sharebench".into(), "run".into()],
            },
            sharing: SharingEvidence { verdict: SharingVerdict::Unverified, proof: None, check: None },
            started_unix_ns: 1,
            finished_unix_ns: 2,
            telemetry: None,
            tenant: None,
            host_conditions: None,
            lanes: vec![LaneResult {
                worker: 0,
                kernels: 1,
                latency_histogram: histogram::to_base64(&h),
                records: records::encode(&recs, 1).unwrap(),
                device_stamps: true,
            }],
        }
    }

    #[test]
    fn json_round_trip() {
        let r = sample_result();
        let line = r.to_json_line();
        assert!(line.starts_with("{\"format\":\"sharebench-result\",\"schema_version\":5,"));
        assert!(!line.contains('\n'));
        assert_eq!(WorkerResult::from_json(&line).unwrap(), r);
    }

    #[test]
    fn version_1_results_without_telemetry_still_read() {
        let old = sample_result().to_json_line().replace("\"schema_version\":5", "\"schema_version\":1");
        let r = WorkerResult::from_json(&old).unwrap();
        assert_eq!((r.schema_version, r.telemetry), (1, None));
        assert!(r.lanes[0].device_stamps && r.config.shape.is_some() && r.tenant.is_none());
        // Before version 4 a result names no repeat: it is its run's only one.
        let v3 = sample_result()
            .to_json_line()
            .replace("\"schema_version\":5", "\"schema_version\":3")
            .replace(",\"repeat\":0", "");
        assert!(!v3.contains("\"repeat\""));
        assert_eq!(WorkerResult::from_json(&v3).unwrap().config.repeat, 0);
        // Before version 5 a result does not say how its worker waited.
        let v4 = sample_result()
            .to_json_line()
            .replace("\"schema_version\":5", "\"schema_version\":4")
            .replace(",\"sync\":\"spin (auto: no CPU quota)\"", "");
        assert!(!v4.contains("\"sync\""));
        assert_eq!(WorkerResult::from_json(&v4).unwrap().config.sync, None);
    }

    #[test]
    fn a_command_result_has_no_kernel_shape_and_says_its_records_have_no_device_stamps() {
        let mut r = sample_result();
        r.config.shape = None;
        r.config.command = Some(vec!["python3".into(), "serve.py".into()]);
        r.lanes[0].device_stamps = false;
        let line = r.to_json_line();
        assert!(!line.contains("\"kernel\"") && line.contains("\"device_stamps\":false"));
        assert_eq!(WorkerResult::from_json(&line).unwrap(), r);
    }

    #[test]
    fn foreign_and_future_documents_are_refused_with_a_reason() {
        assert!(WorkerResult::from_json("{\"a\":1}").unwrap_err().contains("not a sharebench result"));
        let future = sample_result().to_json_line().replace("\"schema_version\":5", "\"schema_version\":99");
        assert!(WorkerResult::from_json(&future).unwrap_err().contains("schema_version 99 is not supported"));
        assert!(WorkerResult::from_json("{\"format\":").unwrap_err().contains("not valid JSON"));
        let inconsistent = sample_result().to_json_line().replace("\"kernels\":1,\"latency", "\"kernels\":2,\"latency");
        assert!(WorkerResult::from_json(&inconsistent).unwrap_err().contains("records.count"));
    }
}
