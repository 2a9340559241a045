//! The one error type a user sees: what went wrong, what was observed, and how to fix it.
//!
//! Every failure that reaches `main` is rendered as `sharebench: error: <problem>` followed by optional
//! `observed:` and `fix:` lines, and mapped to an exit code. Nothing here prints or exits by itself.

use std::fmt;

/// Exit codes shared by every command.
pub mod exit {
    /// Everything worked (for `check`: MPS healthy and joined, or time-slicing as asked).
    pub const OK: i32 = 0;
    /// A usage, input or environment error: nothing was measured.
    pub const ERROR: i32 = 1;
    /// Command-line syntax error (clap's own code).
    pub const USAGE: i32 = 2;
    /// `check`: the control daemon answered but this process did NOT join MPS (silent fallback).
    pub const NOT_JOINED: i32 = 3;
    /// `check`: MPS is broken (daemon unreachable, hung, stale pipe directory).
    pub const MPS_BROKEN: i32 = 4;
    /// A run finished but is incomplete (a worker failed); the results that exist were kept.
    pub const INCOMPLETE: i32 = 5;
}

/// A failure explained for the person who has to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub problem: String,
    pub observed: Option<String>,
    pub fix: Option<String>,
    pub exit_code: i32,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(problem: impl Into<String>) -> Self {
        Error { problem: problem.into(), observed: None, fix: None, exit_code: exit::ERROR }
    }

    pub fn observed(mut self, observed: impl Into<String>) -> Self {
        self.observed = Some(observed.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    pub fn exit_code(mut self, code: i32) -> Self {
        self.exit_code = code;
        self
    }

    /// An I/O failure on a named path.
    pub fn io(action: &str, path: &std::path::Path, err: std::io::Error) -> Self {
        Error::new(format!("cannot {action} {}: {err}", path.display()))
    }

    /// A flag whose value is out of its valid range.
    pub fn flag(flag: &str, message: impl fmt::Display) -> Self {
        Error::new(format!("invalid {flag}: {message}")).exit_code(exit::USAGE)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.problem)?;
        if let Some(observed) = &self.observed {
            write!(f, "\n  observed: {observed}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_puts_observation_and_fix_on_their_own_lines() {
        let e = Error::new("no GPU").observed("libcuda.so.1 not found").fix("install the driver");
        assert_eq!(e.to_string(), "no GPU\n  observed: libcuda.so.1 not found\n  fix: install the driver");
        assert_eq!(e.exit_code, exit::ERROR);
    }

    #[test]
    fn flag_errors_are_usage_errors() {
        let e = Error::flag("--blocks", "must be at least 1");
        assert_eq!(e.exit_code, exit::USAGE);
        assert!(e.problem.contains("--blocks"));
    }
}
