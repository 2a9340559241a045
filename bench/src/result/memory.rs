//! What a CUDA context may use of its device's memory, as a result records it (`gpu.context_memory`); how it is
//! found is `mps::memory`.

use serde::{Deserialize, Serialize};

/// Where the limit in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitSource {
    /// `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` in this process's environment (it overrides the daemon's default).
    ClientEnvironment,
    /// The control daemon's `get_default_device_pinned_mem_limit` for this device.
    DaemonDefault,
    /// No limit named anywhere this process can read: only free and total as the context sees them.
    OnlyObserved,
    /// Not an MPS client: no limit applies, whatever the environment says.
    NotEnforced,
}

/// What a context may use of its device's memory; stored in every result beside the SM share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextMemory {
    pub total_bytes: u64,
    pub free_bytes: u64,
    /// The MPS pinned device memory limit for this client process, where one is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    pub limit_source: LimitSource,
    /// The setting as it was written (`0=8G`, the daemon's `8G`), where there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setting: Option<String>,
    /// What the worker took and held through its window (`run --hold-memory`), where it was asked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<MemoryHold>,
}

/// Device memory a worker took before measuring and held to the end (`--hold-memory SIZE|all`): a greedy
/// neighbour, or a tenant that needs its memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryHold {
    /// As asked: a size (`20G`) or `all`.
    pub asked: String,
    /// What it got.
    pub held_bytes: u64,
    /// Why it stopped short, the driver's words (`None`: it got all it asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// Free memory as the context saw it once it held its memory.
    pub free_after_bytes: u64,
}
