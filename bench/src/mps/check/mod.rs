//! The MPS "dial tone": pipe directory, control daemon, environment, and membership of this process's CUDA
//! context, each reported as a step with what was observed, the likely cause and the fix.
//!
//! `diagnose` is pure: it turns observations into steps, a verdict and an exit code, so every failure path is
//! unit-tested. `run_check` gathers the observations (file system, control client, GPU through a probe).
//!
//! `steps` turns each observation into its step (pure), `gather` makes the observations.

mod gather;
mod steps;

pub use gather::{context_pipe_dir, run_check, CheckSettings};

use crate::error::{exit, Error};
use crate::mps::control::{ControlClient, Invocation};
use crate::mps::membership::{self, Decision, NotJoined, Proof};
use crate::mps::observe::{EnvironmentObservation, PipeDirObservation};
use crate::mps::parse::{self, ControlAnswer};
use crate::result::SharingVerdict;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// The sharing mode the caller expects to be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expectation {
    Mps,
    Timeslice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Ok,
    Info,
    Warn,
    Fail,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub name: &'static str,
    pub status: StepStatus,
    pub summary: String,
    pub cause: Option<String>,
    pub fix: Option<String>,
}

impl Step {
    fn new(name: &'static str, status: StepStatus, summary: impl Into<String>) -> Step {
        Step { name, status, summary: summary.into(), cause: None, fix: None }
    }
    fn because(mut self, cause: impl Into<String>, fix: impl Into<String>) -> Step {
        self.cause = Some(cause.into());
        self.fix = Some(fix.into());
        self
    }
}

/// What the GPU side of the check saw after creating a context and running one kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextProbe {
    pub gpu_uuid: String,
    pub device_sm_count: u32,
    pub context_sm_count: u32,
    /// `cuDeviceGetExecAffinitySupport(SM_COUNT)` after the context exists: 1 only in MPS clients (`None`: the
    /// query failed, or the GPU predates Volta and has no SM affinity at all).
    pub exec_affinity_supported: Option<bool>,
    /// The device's ordinal in this process.
    pub ordinal: u32,
    /// Free and total device memory as the context saw them (`cuMemGetInfo`; `None`: not read).
    pub memory_seen: Option<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    pub probe: ContextProbe,
    pub ps_after_context: Invocation,
    pub answer: ControlAnswer,
    pub evidence: membership::Evidence,
    pub decision: Decision,
    /// How membership was proven ([`Proof::label`]); `None` unless joined.
    pub proof: Option<String>,
    /// Whether this pid is in `get_device_client_list` too (corroboration, asked only where the daemon shares
    /// this PID namespace: the list's pids are the daemon's).
    pub in_device_client_list: Option<bool>,
}

/// Everything the check observed; `diagnose` reads only this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observations {
    pub expect: Expectation,
    pub pipe_dir: PipeDirObservation,
    /// The pipe directory this process's own CUDA contexts use (its environment, or the default).
    pub context_pipe_dir: String,
    pub control_program: Option<String>,
    pub timeout_ms: u64,
    pub ps: Option<Invocation>,
    pub answer: Option<ControlAnswer>,
    pub server_pids: Option<Vec<u32>>,
    pub environment: EnvironmentObservation,
    pub membership: Option<Membership>,
    /// Why membership was not checked, when it was not.
    pub membership_skipped: Option<String>,
    /// Whether a CUDA context of this process ran a kernel where no daemon answered (`None`: not tried, as
    /// when membership was checked, which runs one): time-slicing is verified only on a GPU that works.
    #[serde(default)]
    pub context_ran: Option<bool>,
    /// The probed context's device (ordinal, UUID) and its memory as the context saw it (free, total).
    #[serde(default)]
    pub memory_seen: Option<MemorySeen>,
    /// The daemon's answer to `get_default_device_pinned_mem_limit <ordinal>`, where a daemon answered.
    #[serde(default)]
    pub daemon_memory_limit: Option<String>,
}

/// What a probed context saw of its device's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemorySeen {
    pub ordinal: u32,
    pub uuid: String,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

impl MemorySeen {
    pub fn of(probe: &ContextProbe) -> Option<MemorySeen> {
        let (free_bytes, total_bytes) = probe.memory_seen?;
        Some(MemorySeen { ordinal: probe.ordinal, uuid: probe.gpu_uuid.clone(), free_bytes, total_bytes })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub verdict: SharingVerdict,
    pub verdict_label: String,
    /// The verdict is what was expected.
    pub healthy: bool,
    pub exit_code: i32,
    pub steps: Vec<Step>,
    /// What this process's context may use of its device's memory (`None`: no context was made).
    pub memory: Option<crate::result::memory::ContextMemory>,
    pub observations: Observations,
}

pub(super) fn daemon_answers(answer: &Option<ControlAnswer>) -> bool {
    matches!(answer, Some(ControlAnswer::NoServer | ControlAnswer::Clients { .. }))
}

/// Turns observations into steps, a verdict and an exit code.
pub fn diagnose(o: Observations) -> CheckReport {
    let mut steps = vec![
        steps::pipe_dir_step(&o),
        steps::control_step(&o),
        steps::environment_step(&o),
        steps::membership_step(&o),
    ];
    let no_daemon = matches!(o.answer, Some(ControlAnswer::NoDaemon)) || (!o.pipe_dir.exists && o.answer.is_none());
    let verdict = match (&o.membership, no_daemon) {
        (Some(m), _) => match m.decision {
            Decision::Joined { .. } => SharingVerdict::MpsJoined,
            Decision::NotJoined { .. } => SharingVerdict::MpsNotJoined,
            Decision::Undecided { .. } => SharingVerdict::Unverified,
        },
        (None, true) => SharingVerdict::NoDaemon,
        (None, false) => SharingVerdict::Unverified,
    };
    let broken = steps[..2].iter().any(|s| s.status == StepStatus::Fail);
    let (healthy, exit_code) = match (o.expect, verdict) {
        (Expectation::Mps, SharingVerdict::MpsJoined) => (true, exit::OK),
        (Expectation::Mps, SharingVerdict::MpsNotJoined) => (false, exit::NOT_JOINED),
        (Expectation::Mps, SharingVerdict::NoDaemon) => (false, exit::MPS_BROKEN),
        // With no daemon, time-slicing is verified only if a context ran: on a machine without a GPU or driver a
        // probe must not pass.
        (Expectation::Timeslice, SharingVerdict::NoDaemon) if o.context_ran == Some(false) => (false, exit::ERROR),
        (Expectation::Timeslice, SharingVerdict::NoDaemon | SharingVerdict::MpsNotJoined) => (true, exit::OK),
        (Expectation::Timeslice, SharingVerdict::MpsJoined) => (false, exit::NOT_JOINED),
        (_, SharingVerdict::Unverified) if broken => (false, exit::MPS_BROKEN),
        (_, SharingVerdict::Unverified) => (false, exit::ERROR),
    };
    let (memory_step, memory) = steps::memory_step(&o, verdict == SharingVerdict::MpsJoined);
    steps.push(memory_step);
    let verdict_label = verdict.label().to_string();
    CheckReport { verdict, verdict_label, healthy, exit_code, steps, memory, observations: o }
}

/// The report as a person reads it.
pub fn render(report: &CheckReport) -> String {
    let expect = match report.observations.expect {
        Expectation::Mps => "mps",
        Expectation::Timeslice => "timeslice",
    };
    let mut out = format!("sharebench check (expecting {expect})\n");
    for s in &report.steps {
        let tag = match s.status {
            StepStatus::Ok => " ok ",
            StepStatus::Info => "info",
            StepStatus::Warn => "warn",
            StepStatus::Fail => "FAIL",
            StepStatus::Skipped => "skip",
        };
        out += &format!("  [{tag}] {:<15} {}\n", s.name, s.summary);
        if let Some(cause) = &s.cause {
            out += &format!("         {:<15} cause: {cause}\n", "");
        }
        if let Some(fix) = &s.fix {
            out += &format!("         {:<15} fix:   {fix}\n", "");
        }
    }
    out += &format!("verdict: {}\n", report.verdict_label);
    out
}

#[cfg(test)]
mod tests;
