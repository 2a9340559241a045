//! `sharebench check`: the MPS dial tone, with the diagnosis printed or as JSON. `run` goes through the same
//! check before it measures (`lifecycle::mode`).

use crate::cli::{CheckArgs, Expect, MpsControlArgs};
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu};
use crate::lifecycle::mode::probe;
use crate::mps::check::{self, CheckReport, CheckSettings, Expectation};

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
