//! Everything about CUDA MPS: parsing the control client's answers, running it with a deadline, observing the
//! pipe directory and environment, the check itself, and the private daemon `compare` starts and stops.

pub mod check;
pub mod control;
pub mod daemon;
pub mod membership;
pub mod memory;
pub mod observe;
pub mod parse;
