//! `sharebench check`, and the verification `run` does before it measures: both go through `verify`.

use crate::cli::{CheckArgs, Expect, MpsControlArgs};
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu};
use crate::mps::check::{self, CheckReport, CheckSettings, ContextProbe, Expectation, StepStatus};
use crate::result::{SharingEvidence, SharingVerdict};

/// Creates the context's footprint on the MPS server: one kernel launched and finished on this GPU.
fn probe(gpu: &Gpu) -> Result<ContextProbe> {
    gpu.run_probe_kernel()?;
    let id = gpu.identity();
    Ok(ContextProbe {
        gpu_uuid: id.uuid.clone(),
        device_sm_count: id.sm_count,
        context_sm_count: id.context_sm_count,
        exec_affinity_supported: gpu::exec_affinity_supported(gpu),
    })
}

/// Runs the check, opening the GPU with `gpu` only when a daemon answers. The opened GPU is handed back so its
/// context outlives the membership queries (a context that is gone is no longer in the server's client list).
pub fn check_with(
    expect: Expectation,
    pipe_dir: Option<std::path::PathBuf>,
    control: &MpsControlArgs,
    gpu: impl FnOnce() -> Result<Gpu>,
) -> (CheckReport, Option<Gpu>) {
    let settings = CheckSettings::new(expect, pipe_dir, control.mps_control.clone(), control.mps_timeout);
    let mut opened = None;
    let report = check::run_check(&settings, || {
        let g = gpu()?;
        let p = probe(&g);
        opened = Some(g);
        p
    });
    (report, opened)
}

/// `run`'s gate: the measured process must be what its mode says. Returns the evidence for the result file.
pub fn verify(expect: Expectation, control: &MpsControlArgs, gpu: &Gpu) -> Result<SharingEvidence> {
    let settings = CheckSettings::new(expect, None, control.mps_control.clone(), control.mps_timeout);
    let report = check::run_check(&settings, || probe(gpu));
    let evidence = SharingEvidence {
        verdict: report.verdict,
        proof: report.observations.membership.as_ref().and_then(|m| m.proof.clone()),
        check: serde_json::to_value(&report).ok(),
    };
    if report.healthy {
        return Ok(evidence);
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

pub fn execute(args: &CheckArgs) -> Result<i32> {
    let expect = match args.expect {
        Expect::Mps => Expectation::Mps,
        Expect::Timeslice => Expectation::Timeslice,
    };
    let (report, _gpu) = check_with(expect, args.pipe_dir.clone(), &args.control, || {
        gpu::ensure_driver()?;
        Gpu::open(args.gpu)
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).map_err(|e| Error::new(e.to_string()))?);
    } else {
        print!("{}", check::render(&report));
    }
    Ok(report.exit_code)
}

/// Maps a worker mode to the check's expectation (`None`: unverified).
pub fn expectation_for(mode: crate::cli::Mode) -> Option<Expectation> {
    match mode {
        crate::cli::Mode::Mps => Some(Expectation::Mps),
        crate::cli::Mode::Timeslice | crate::cli::Mode::Streams => Some(Expectation::Timeslice),
        crate::cli::Mode::Unverified => None,
    }
}

/// Evidence for a run that was not verified.
pub fn unverified() -> SharingEvidence {
    SharingEvidence { verdict: SharingVerdict::Unverified, proof: None, check: None }
}
