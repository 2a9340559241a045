//! The kustomize overlay of one plan point: the user's overlay for the mode (which brings the GPU and the
//! sharing: a DRA claim, a device-plugin resource, a hostPath pipe directory) plus a patch that sizes the
//! Indexed Job to the point and makes every Pod a worker of the scenario, which arrives as a ConfigMap.
//! Pure: returns the files' text; the caller writes them.

use super::JOB_NAME;
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};

/// Where the scenario ConfigMap is mounted in the worker container.
pub const SCENARIO_MOUNT: &str = "/etc/sharebench";
/// The scenario's file name, in the point directory and in the mount.
pub const SCENARIO_FILE: &str = "scenario.toml";
/// The patch's file name in the point directory.
pub const PATCH_FILE: &str = "point-patch.json";
/// The address of the start barrier, served by worker 0 behind the Job's headless Service.
pub const BARRIER: &str = "sharebench-0.sharebench:7777";

/// The scenario file as the worker container sees it.
pub fn scenario_in_pod() -> String {
    format!("{SCENARIO_MOUNT}/{SCENARIO_FILE}")
}

/// One point as a Job: how many Pods, the run id they share, and the arguments after `run` that each Pod gets
/// (the Pod's completion index makes it a worker of its group; the barrier flags are added here).
#[derive(Debug, Clone, PartialEq)]
pub struct PointJob {
    pub pods: u32,
    pub run_id: String,
    pub worker_args: Vec<String>,
    /// The Job ends itself after this long (`activeDeadlineSeconds`), so a stuck point frees the GPU.
    pub deadline_s: u64,
}

/// The Secret whose `token` the base Job gives every worker as its barrier token.
pub const TOKEN_SECRET: &str = "sharebench-barrier-token";

/// `kustomization.yaml` of a point: `overlay` is the mode's overlay relative to the point directory, `token`
/// the barrier token of this Job alone (a generated Secret). The replacement gives the barrier's NetworkPolicy
/// (if the overlay has one) the point's run label.
pub fn kustomization(overlay: &Path, token: &str) -> String {
    format!(
        "# One point of a sharebench plan: written by `sharebench plan --kubernetes`; apply with kubectl apply -k.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n  - {}\n\
         configMapGenerator:\n  - name: sharebench-scenario\n    files:\n      - {SCENARIO_FILE}\n\
         secretGenerator:\n  - name: {TOKEN_SECRET}\n    literals:\n      - token={token}\n\
         patches:\n  - path: {PATCH_FILE}\n    target:\n      kind: Job\n      name: {JOB_NAME}\n\
         replacements:\n  - source:\n      kind: Job\n      name: {JOB_NAME}\n      \
         fieldPath: spec.template.metadata.labels.[{RUN_LABEL}]\n    targets:\n      - select:\n          \
         kind: NetworkPolicy\n          name: {NETWORK_POLICY}\n        fieldPaths:\n          \
         - spec.podSelector.matchLabels.[{RUN_LABEL}]\n          \
         - spec.ingress.0.from.0.podSelector.matchLabels.[{RUN_LABEL}]\n",
        overlay.display()
    )
}

/// The label every Pod of one run carries (and the barrier's NetworkPolicy admits).
pub const RUN_LABEL: &str = "sharebench.dev/run";
/// The NetworkPolicy of `manifests/base` that guards the barrier.
pub const NETWORK_POLICY: &str = "sharebench-barrier";

/// The JSON patch (RFC 6902) of a point. The `test` operation makes kustomize refuse an overlay whose worker
/// count variable is not where the base Job keeps it, instead of patching the wrong variable.
pub fn patch(job: &PointJob) -> Value {
    let container = "/spec/template/spec/containers/0";
    let mut args = vec!["run".to_string()];
    args.extend(job.worker_args.iter().cloned());
    args.extend(["--barrier", BARRIER, "--barrier-listen", "0.0.0.0:7777"].map(String::from));
    json!([
        {"op": "replace", "path": "/spec/completions", "value": job.pods},
        {"op": "replace", "path": "/spec/parallelism", "value": job.pods},
        {"op": "add", "path": "/spec/activeDeadlineSeconds", "value": job.deadline_s},
        {"op": "replace", "path": "/spec/template/metadata/labels/sharebench.dev~1run", "value": job.run_id},
        {"op": "test", "path": format!("{container}/env/1/name"), "value": "SHAREBENCH_WORKERS"},
        {"op": "replace", "path": format!("{container}/env/1/value"), "value": job.pods.to_string()},
        {"op": "replace", "path": format!("{container}/args"), "value": args},
        {"op": "add", "path": format!("{container}/volumeMounts/-"),
         "value": {"name": "scenario", "mountPath": SCENARIO_MOUNT, "readOnly": true}},
        {"op": "add", "path": "/spec/template/spec/volumes/-",
         "value": {"name": "scenario", "configMap": {"name": "sharebench-scenario"}}},
    ])
}

/// A Kubernetes label value made of `text`: letters, digits, `-`, `_`, `.`, at most 63 characters, starting and
/// ending with a letter or digit.
pub fn label_value(text: &str) -> String {
    let mapped: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).take(63).collect();
    mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// `to` relative to the directory `from` (both absolute), as kustomize requires for a resource.
pub fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<Component>, Vec<Component>) = (from.components().collect(), to.components().collect());
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel: PathBuf = from[common..].iter().map(|_| Component::ParentDir).collect();
    rel.extend(&to[common..]);
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> PointJob {
        PointJob {
            pods: 5,
            run_id: "plan-noisy-mps-4".into(),
            worker_args: ["--mode", "mps", "--workers", "5", "--scenario", "/etc/sharebench/scenario.toml"]
                .map(String::from)
                .to_vec(),
            deadline_s: 900,
        }
    }

    fn op<'a>(patch: &'a Value, path: &str) -> &'a Value {
        patch.as_array().unwrap().iter().find(|o| o["path"] == path && o["op"] != "test").unwrap()
    }

    #[test]
    fn the_patch_sizes_the_job_and_makes_every_pod_a_scenario_worker() {
        let p = patch(&job());
        assert_eq!(op(&p, "/spec/completions")["value"], 5);
        assert_eq!(op(&p, "/spec/parallelism")["value"], 5);
        assert_eq!(op(&p, "/spec/template/spec/containers/0/env/1/value")["value"], "5");
        assert_eq!(op(&p, "/spec/template/metadata/labels/sharebench.dev~1run")["value"], "plan-noisy-mps-4");
        let args: Vec<&str> = op(&p, "/spec/template/spec/containers/0/args")["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[..3], ["run", "--mode", "mps"]);
        assert!(args.windows(2).any(|w| w == ["--scenario", "/etc/sharebench/scenario.toml"]));
        assert!(args.windows(2).any(|w| w == ["--barrier", BARRIER]));
        let guard = p.as_array().unwrap().iter().find(|o| o["op"] == "test").unwrap();
        assert_eq!(guard["value"], "SHAREBENCH_WORKERS");
    }

    #[test]
    fn the_kustomization_points_at_the_mode_overlay_and_generates_the_scenario() {
        let k = kustomization(Path::new("../../../manifests/overlays/dra-mps"), "0123abcd");
        assert!(k.contains("- name: sharebench-barrier-token\n    literals:\n      - token=0123abcd"), "{k}");
        assert!(k.contains("resources:\n  - ../../../manifests/overlays/dra-mps\n"), "{k}");
        assert!(k.contains("      - scenario.toml\n") && k.contains("  - path: point-patch.json\n"));
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("plan-my scenario/mps (25%)-4"), "plan-my-scenario-mps--25---4");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn relative_paths_climb_to_the_common_ancestor() {
        let rel = relative_path(Path::new("/w/out/points/mps-4"), Path::new("/w/repo/manifests/overlays/dra-mps"));
        assert_eq!(rel, Path::new("../../../repo/manifests/overlays/dra-mps"));
        assert_eq!(relative_path(Path::new("/a/b"), Path::new("/a/b")), Path::new("."));
    }
}
