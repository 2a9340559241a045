//! Running plan points as Kubernetes Jobs: the kustomize overlay of one point (pure, `overlay`) and the
//! `kubectl` calls that apply it, follow the Job, collect its logs and delete it (`kubectl`).

pub mod kubectl;
pub mod overlay;

/// The Job (and its headless Service) every sharebench overlay defines.
pub const JOB_NAME: &str = "sharebench";
