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
    let outcome = match &cli.command {
        Command::Run(args) => commands::run::execute(args),
        Command::Check(args) => commands::check::execute(args),
        Command::Compare(args) => commands::compare::execute(args),
        Command::Plan(args) => commands::plan::execute(args),
        Command::Report(args) => commands::report::execute(args),
        Command::Calibrate(args) => commands::calibrate::execute(args),
    };
    let code = match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sharebench: error: {e}");
            e.exit_code
        }
    };
    std::process::exit(code);
}
