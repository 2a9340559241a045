//! The subcommands: each turns parsed flags into validated settings, drives the effects, and returns an exit code.

pub mod calibrate;
pub mod check;
pub mod compare;
pub mod plan;
pub mod report;
pub mod run;
