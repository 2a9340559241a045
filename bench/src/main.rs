//! sharebench: measure how well N workloads share one NVIDIA GPU under CUDA MPS versus time-slicing.
//!
//! `main` parses the command line, dispatches to a command, and turns any error into one explained message and
//! an exit code. No command prints a panic: a last-resort hook turns one into an "internal error" line.

use clap::Parser;
use sharebench::cli::{Cli, Command};
use sharebench::commands;

fn main() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("sharebench: internal error{location}: {message}\n  fix: this is a bug; please report it with the command line");
    }));
    let cli = Cli::parse();
    if matches!(cli.command, Command::Report(_)) {
        // `report ... | head` closes the pipe early: end quietly, as the Unix tools do, instead of failing on the
        // next write. Only `report`: the other commands write to pipes of their own (the MPS control client's
        // stdin), where a broken pipe is an error to handle, not a reason to die.
        // SAFETY: resetting one signal to its default disposition, before any other thread exists.
        let _ = unsafe {
            nix::sys::signal::signal(nix::sys::signal::Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl)
        };
    }
    let outcome = match &cli.command {
        Command::Run(args) => commands::run::execute(args),
        Command::Check(args) => commands::check::execute(args),
        Command::Compare(args) => commands::compare::execute(args),
        Command::Plan(args) => commands::plan::execute(args),
        Command::Report(args) => commands::report::execute(args),
        Command::Calibrate(args) => commands::calibrate::execute(args),
        Command::PlanPages(args) => commands::plan::rerender(&args.dir),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sharebench: error: {}", sharebench::units::printable(&e.to_string()));
            e.exit_code
        }
    };
    std::process::exit(code);
}
