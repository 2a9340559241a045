//! What the analysis warns about: the kinds, severe ones (they question the numbers themselves: the answer names
//! no winner where one concerns a worker count) apart from advisories (they question precision), and one warning's
//! record. Pure data.

use super::GroupSummary;
use crate::load::Worker;
use serde::Serialize;

/// What a warning is about; severe ones question the numbers themselves, advisories their precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningKind {
    /// 'mps' workers not verified as MPS clients: their numbers may be time-slicing.
    Unverified,
    /// Workers missing or stopped early.
    Incomplete,
    /// A run's workers ran on several GPUs: they did not share one.
    SpreadOverGpus,
    /// What the caller knows failed (e.g. a compare phase).
    Failed,
    /// The GPU's conditions during the run: clocks moved, throttling, other processes on the GPU.
    Conditions,
    /// A repeat too short or with too few samples: its group's figures are INVALID.
    Invalid,
    /// Too few samples behind a percentile.
    FewSamples,
    /// No GPU telemetry could be taken (no NVML), so the conditions are unknown.
    NoTelemetry,
    /// A part of the comparison that does not apply to this workload (a foreign command has no streams ceiling).
    NotApplicable,
    /// A foreign command's own troubles that leave its numbers standing: it ignored SIGTERM, it reported nothing.
    Command,
    /// A GPU setting that says what the figures are of (MIG mode: one instance, not the whole GPU).
    GpuSetting,
}

impl WarningKind {
    pub fn severe(self) -> bool {
        !matches!(
            self,
            WarningKind::FewSamples
                | WarningKind::NoTelemetry
                | WarningKind::NotApplicable
                | WarningKind::Command
                | WarningKind::GpuSetting
        )
    }

    /// The heading of its group of warnings.
    pub fn title(self) -> &'static str {
        match self {
            WarningKind::Unverified => "MPS membership not verified: the numbers may be time-slicing",
            WarningKind::Incomplete => "incomplete: figures cover what was recorded",
            WarningKind::SpreadOverGpus => {
                "workers on several GPUs: they did not share one, each GPU reported on its own"
            }
            WarningKind::Failed => "failed",
            WarningKind::Conditions => {
                "the run's conditions put its figures in doubt: the GPU's (telemetry) or the host's (CPU or memory limits)"
            }
            WarningKind::Invalid => "INVALID: too short or too few samples for its figures to count",
            WarningKind::FewSamples => "too few samples for a distribution-free 95% bound on p99 (368 needed)",
            WarningKind::NoTelemetry => {
                "no GPU telemetry (NVML unavailable): clocks, throttling and other tenants unknown"
            }
            WarningKind::NotApplicable => "not measured, because it does not apply",
            WarningKind::Command => "foreign commands: what they did besides their requests",
            WarningKind::GpuSetting => "the GPU's settings: what the figures are of",
        }
    }
}

/// One warning: its kind, the run and group it concerns (`mps x8`), and the full sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub kind: WarningKind,
    pub run_id: String,
    pub subject: String,
    pub text: String,
}

/// The warnings of one repeat of one group (`which`: `mps x4 repeat 2`): unverified workers, changed GPU
/// conditions or none recorded, INVALID, what its commands did, and too few samples for a p99 bound.
pub fn of_group(g: &GroupSummary, members: &[&Worker], which: &str) -> Vec<Warning> {
    let (run, mode) = (&g.key.run_id, &g.key.mode);
    let mut warnings = Vec::new();
    let mut warn = |kind, subject: String, text: String| {
        warnings.push(Warning { kind, run_id: run.clone(), subject, text: format!("run {run}, {which}: {text}") })
    };
    if mode == "mps" && g.verified_workers < g.workers_reported {
        let missing = g.workers_reported - g.verified_workers;
        warn(
            WarningKind::Unverified,
            format!("{which} ({missing} of {})", g.workers_reported),
            format!(
                "{missing} of {} 'mps' workers were NOT verified as MPS clients; their numbers may be time-slicing",
                g.workers_reported
            ),
        );
    }
    match &g.conditions {
        Some(c) if !c.problems.is_empty() => {
            warn(WarningKind::Conditions, format!("{which}: {}", c.problems.join("; ")), c.problems.join("; "))
        }
        Some(c) if c.source != "nvml" => warn(WarningKind::NoTelemetry, which.to_string(), c.source.clone()),
        _ => {}
    }
    for w in members {
        let problems = w.host_conditions.as_ref().map(|h| h.problems()).unwrap_or_default();
        if !problems.is_empty() {
            let text = format!("worker {}: {}", w.worker, problems.join("; "));
            warn(WarningKind::Conditions, format!("{which} worker {}: host {}", w.worker, problems.join("; ")), text);
        }
    }
    let notes: std::collections::BTreeSet<String> =
        members.iter().filter_map(|w| w.host_conditions.as_ref()).flat_map(|h| h.notes()).collect();
    for note in notes {
        warn(WarningKind::GpuSetting, format!("{which}: {note}"), note);
    }
    if !g.invalid.is_empty() {
        warn(WarningKind::Invalid, format!("{which}: {}", g.invalid.join("; ")), g.invalid.join("; "));
    }
    for w in members {
        let Some(t) = &w.tenant else { continue };
        let subject = format!("{which} worker {}", w.worker);
        if t.ending == "killed" {
            warn(
                WarningKind::Command,
                subject.clone(),
                format!(
                    "worker {}: its command ignored SIGTERM at the window's end and was killed after the grace period",
                    w.worker
                ),
            );
        }
        if w.neighbour_only() && t.reports {
            warn(
                WarningKind::Command,
                subject,
                format!("worker {}: its command is {}", w.worker, super::group::neighbour_text(w)),
            );
        }
    }
    if g.latency.samples > 0 && !g.latency.enough_for(0.99) {
        warn(
            WarningKind::FewSamples,
            format!("{which} (n={})", g.latency.samples),
            format!(
                "{} samples are too few for a distribution-free 95% bound on p99 (need {})",
                g.latency.samples,
                super::percentile_bounds::min_samples_95(0.99)
            ),
        );
    }
    warnings
}
