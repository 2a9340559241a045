//! sharebench as a library: everything the `sharebench` binary does, for the binary, the examples and the
//! benchmarks. See the README for the architecture; each module's doc says what it owns.

pub mod analysis;
pub mod arrivals;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod error;
pub mod fsio;
pub mod gpu;
pub mod host;
pub mod kubernetes;
pub mod lifecycle;
pub mod load;
pub mod mps;
pub mod orchestrate;
pub mod parallel;
pub mod rendezvous;
pub mod report;
pub mod result;
pub mod scenario;
pub mod stamp;
pub mod telemetry;
pub mod tenant;
pub mod termination;
pub mod units;
pub mod worker;
pub mod workload;
