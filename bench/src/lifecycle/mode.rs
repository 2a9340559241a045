//! The gate before measuring: the measured process must be what its mode says (an MPS client, or not one), as
//! `sharebench check` decides it. Returns the evidence a result records, or an error that refuses to measure.

use crate::cli::{Mode, MpsControlArgs};
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu};
use crate::mps::check::{self, CheckSettings, ContextProbe, Expectation, StepStatus};
use crate::mps::memory::{self, ContextMemory};
use crate::result::{SharingEvidence, SharingVerdict};

/// Creates the context's footprint on the MPS server: one kernel launched and finished on this GPU.
pub fn probe(gpu: &Gpu) -> Result<ContextProbe> {
    gpu.run_probe_kernel()?;
    let id = gpu.identity();
    Ok(ContextProbe {
        gpu_uuid: id.uuid.clone(),
        device_sm_count: id.sm_count,
        context_sm_count: id.context_sm_count,
        exec_affinity_supported: gpu::exec_affinity_supported(gpu),
        ordinal: id.ordinal,
        memory_seen: gpu.memory_seen(),
    })
}

/// Maps a worker mode to the check's expectation (`None`: unverified).
pub fn expectation_for(mode: Mode) -> Option<Expectation> {
    match mode {
        Mode::Mps => Some(Expectation::Mps),
        Mode::Timeslice | Mode::Streams => Some(Expectation::Timeslice),
        Mode::Unverified => None,
    }
}

/// Evidence for a run that was not verified.
pub fn unverified() -> SharingEvidence {
    SharingEvidence { verdict: SharingVerdict::Unverified, proof: None, check: None }
}

/// Verifies `mode` for this process with its context on `gpu` (nothing to verify for `unverified`); returns the
/// evidence and what the context may use of the device's memory.
pub fn verify_mode(
    mode: Mode,
    control: &MpsControlArgs,
    gpu: &Gpu,
) -> Result<(SharingEvidence, Option<ContextMemory>)> {
    match expectation_for(mode) {
        Some(expect) => verify(expect, control, gpu),
        None => Ok((unverified(), unverified_memory(gpu))),
    }
}

/// An unverified run's memory: what its context sees, and the limit its environment names (whether MPS enforces
/// it is not known without the check).
fn unverified_memory(gpu: &Gpu) -> Option<ContextMemory> {
    let seen = gpu.memory_seen()?;
    let id = gpu.identity();
    let value = std::env::var(memory::LIMIT_ENV).ok();
    let env = value.as_deref().and_then(|v| Some((v, memory::limit_from_env(v, id.ordinal, &id.uuid).ok()?)));
    Some(memory::resolve(seen, true, env, None))
}

/// Runs the check with `gpu`'s context as the probe.
fn verify(
    expect: Expectation,
    control: &MpsControlArgs,
    gpu: &Gpu,
) -> Result<(SharingEvidence, Option<ContextMemory>)> {
    let settings = CheckSettings::new(expect, None, control.mps_control.clone(), control.mps_timeout);
    let report = check::run_check(&settings, || probe(gpu));
    let evidence = SharingEvidence {
        verdict: report.verdict,
        proof: report.observations.membership.as_ref().and_then(|m| m.proof.clone()),
        check: serde_json::to_value(&report).ok(),
    };
    if report.healthy {
        return Ok((evidence, report.memory));
    }
    let failing = report.steps.iter().find(|s| s.status == StepStatus::Fail);
    let wanted = match expect {
        Expectation::Mps => "an MPS client",
        Expectation::Timeslice => "NOT an MPS client",
    };
    let mut err = Error::new(format!(
        "refusing to measure: this worker must be {wanted}, but the check says: {}",
        report.verdict_label
    ))
    .exit_code(report.exit_code);
    if let Some(step) = failing {
        err = err.observed(format!("{}: {}", step.name, step.summary));
        if let Some(fix) = &step.fix {
            err = err.fix(fix.clone());
        }
    }
    Err(err)
}
