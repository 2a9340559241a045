//! The part of a result that describes a foreign command run as the workload (`run --exec`): how long it took
//! to be ready, how it ended, what it reported and what was left out of the window, and how its sharing mode was
//! verified (the decision on its process tree). Serde types only.

use super::SharingVerdict;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantReport {
    /// Whether the command speaks the reporting protocol (`false`: `--no-protocol`, a neighbour only).
    pub reports: bool,
    /// Seconds from its start until it reported `ready` (`None`: it never did).
    pub ready_after_s: Option<f64>,
    /// How it ended: `exited`, `terminated` (by SIGTERM at the window's end), `killed` (it ignored SIGTERM),
    /// `never-ready` (stopped after --ready-timeout), `exited-before-ready`, `stopped-before-ready` (its worker
    /// was terminated first), `refused` (its mode was wrong).
    pub ending: String,
    /// Its exit status in words (`exit status 0`, `killed by signal 9 (SIGKILL)`).
    pub exit_status: Option<String>,
    /// Seconds it ran, start to end.
    pub ran_s: f64,
    /// Requests it reported within the window, before it (warm-up, waiting for peers) and after it (in flight).
    pub requests_in_window: u64,
    pub requests_before_window: u64,
    pub requests_after_window: u64,
    /// Items and tokens of the requests in the window, where it reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Time to first token and time per output token of the window's streamed requests (HDR histograms, as a
    /// lane's latency), where the command reported `ttft_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_histogram: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_histogram: Option<String>,
    /// Protocol lines not understood, and the first few of them (`line N: "text": why`).
    pub protocol_errors: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol_error_lines: Vec<String>,
    /// Its mode, verified when it was ready and again at the window's end.
    pub membership_at_ready: Option<TreeDecision>,
    pub membership_at_end: Option<TreeDecision>,
}

impl TenantReport {
    /// Nothing recorded yet.
    pub fn new(reports: bool) -> TenantReport {
        TenantReport {
            reports,
            ready_after_s: None,
            ending: String::new(),
            exit_status: None,
            ran_s: 0.0,
            requests_in_window: 0,
            requests_before_window: 0,
            requests_after_window: 0,
            items: None,
            tokens: None,
            prompt_tokens: None,
            ttft_histogram: None,
            tpot_histogram: None,
            protocol_errors: 0,
            protocol_error_lines: vec![],
            membership_at_ready: None,
            membership_at_end: None,
        }
    }

    /// The pids of the command's processes that held the GPU, at ready or at the end.
    pub fn gpu_pids(&self) -> impl Iterator<Item = u32> + '_ {
        [&self.membership_at_ready, &self.membership_at_end]
            .into_iter()
            .flatten()
            .flat_map(|d| d.gpu_processes.iter().map(|p| p.pid))
    }

    /// A command that reported no request in the window: a neighbour whose own latency is unknown.
    pub fn neighbour_only(&self) -> bool {
        self.requests_in_window == 0
    }
}

/// A process of the command's tree that holds the GPU's device files open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuProcess {
    pub pid: u32,
    pub comm: String,
    /// Its `CUDA_MPS_PIPE_DIRECTORY` (`None`: unset, or its environment could not be read).
    pub pipe_dir: Option<String>,
}

/// The decision, with what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeDecision {
    pub verdict: SharingVerdict,
    /// How MPS membership was proven (`command-pid+namespace`, `command-tree+namespace`), when joined.
    pub proof: Option<String>,
    /// Whether the command matches the mode: measure only when true.
    pub as_expected: bool,
    /// Client rows of the command (in this namespace, or by pid).
    pub client_rows: usize,
    pub gpu_processes: Vec<GpuProcess>,
    /// The decision in words, with the evidence.
    pub text: String,
}
