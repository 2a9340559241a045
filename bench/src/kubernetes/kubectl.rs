//! The `kubectl` calls of a Kubernetes plan: apply and delete a point's overlay, read its Job's status and its
//! Pods' problems, and fetch the Pods' logs. Reading kubectl's JSON is pure (`job_status`, `pod_problems`).

use super::JOB_NAME;
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// kubectl, and the namespace every call uses (`None`: the context's).
#[derive(Debug, Clone)]
pub struct Kubectl {
    pub program: PathBuf,
    pub namespace: Option<String>,
}

/// What a Job's status says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobStatus {
    pub active: u32,
    pub succeeded: u32,
    pub failed: u32,
    /// `Some(true)`: Complete; `Some(false)`: Failed (with the condition's reason and message); `None`: running.
    pub finished: Option<bool>,
    pub reason: Option<String>,
}

const SELECTOR: &str = "job-name=sharebench";
/// Objects labelled `sharebench.dev/keep: "true"` are node configuration: applied with a point, never deleted.
pub const KEEP_LABEL: &str = "sharebench.dev/keep";

impl Kubectl {
    fn output(&self, args: &[&str]) -> Result<String> {
        let mut command = Command::new(&self.program);
        if let Some(ns) = &self.namespace {
            command.args(["--namespace", ns]);
        }
        let shown = format!("{} {}", self.program.display(), args.join(" "));
        let out = command.args(args).output().map_err(|e| {
            Error::new(format!("cannot run {}: {e}", self.program.display()))
                .fix("install kubectl, or name it with --kubectl PATH")
        })?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(Error::new(format!("`{shown}` failed ({})", out.status))
                .observed(stderr.trim().lines().take(6).collect::<Vec<_>>().join(" | ")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether a Job named sharebench exists already (a point's Job must not meet an old one).
    pub fn job_exists(&self) -> Result<bool> {
        Ok(!self.output(&["get", "job", JOB_NAME, "--ignore-not-found", "-o", "name"])?.trim().is_empty())
    }

    pub fn apply(&self, dir: &Path) -> Result<()> {
        self.output(&["apply", "-k", &dir.display().to_string()]).map(|_| ())
    }

    /// Deletes what `apply` created, except node configuration labelled to keep (a device plugin's ConfigMap),
    /// and waits until it is gone, so the next point starts on a free GPU.
    pub fn delete(&self, dir: &Path) -> Result<()> {
        let dir = dir.display().to_string();
        let keep = format!("{KEEP_LABEL}!=true");
        let args = ["delete", "-k", &dir, "-l", &keep, "--ignore-not-found", "--wait=true", "--cascade=foreground"];
        self.output(&args).map(|_| ())
    }

    pub fn job_status(&self) -> Result<JobStatus> {
        let text = self.output(&["get", "job", JOB_NAME, "-o", "json"])?;
        job_status(&text).map_err(|e| Error::new(format!("kubectl get job {JOB_NAME}: {e}")))
    }

    /// Pods of the Job that are not running or done, with the reason Kubernetes gives.
    pub fn pod_problems(&self) -> Result<Vec<String>> {
        let text = self.output(&["get", "pods", "-l", SELECTOR, "-o", "json"])?;
        Ok(pod_problems(&text))
    }

    /// Every line every Pod of the Job printed, each prefixed with its Pod (`[pod/NAME/worker] `).
    pub fn logs(&self, pods: u32) -> Result<String> {
        let max = (pods + 1).to_string();
        self.output(&["logs", "-l", SELECTOR, "--tail=-1", "--prefix", "--ignore-errors", "--max-log-requests", &max])
    }
}

fn count(status: &Value, field: &str) -> u32 {
    status[field].as_u64().unwrap_or(0) as u32
}

/// Reads `kubectl get job -o json`.
pub fn job_status(text: &str) -> std::result::Result<JobStatus, String> {
    let job: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if job["kind"] != "Job" {
        return Err(format!("expected a Job, got {}", job["kind"]));
    }
    let status = &job["status"];
    let mut s = JobStatus {
        active: count(status, "active"),
        succeeded: count(status, "succeeded"),
        failed: count(status, "failed"),
        ..Default::default()
    };
    for c in status["conditions"].as_array().into_iter().flatten() {
        if c["status"] != "True" {
            continue;
        }
        let finished = match c["type"].as_str() {
            Some("Complete") => true,
            Some("Failed") => false,
            _ => continue,
        };
        s.finished = Some(finished);
        let (reason, message) = (c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or(""));
        s.reason = (!reason.is_empty() || !message.is_empty()).then(|| format!("{reason}: {message}"));
    }
    Ok(s)
}

/// Reads `kubectl get pods -o json`: one line per Pod that is pending, waiting or failed.
pub fn pod_problems(text: &str) -> Vec<String> {
    let Ok(list) = serde_json::from_str::<Value>(text) else { return vec!["unreadable pod list".to_string()] };
    let mut problems = Vec::new();
    for pod in list["items"].as_array().into_iter().flatten() {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
        if matches!(phase, "Running" | "Succeeded") {
            continue;
        }
        let unscheduled = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
        let waiting = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["state"]["waiting"].as_object().or(c["state"]["terminated"].as_object()));
        let why = match (unscheduled, waiting) {
            (Some(c), _) => format!("{}: {}", c["reason"].as_str().unwrap_or(""), c["message"].as_str().unwrap_or("")),
            (None, Some(w)) => format!(
                "{}: {}",
                w.get("reason").and_then(Value::as_str).unwrap_or(""),
                w.get("message").and_then(Value::as_str).unwrap_or("")
            ),
            (None, None) => String::new(),
        };
        problems.push(format!("pod {name} {phase} {}", why.trim_end_matches(": ")).trim_end().to_string());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_job_is_not_finished_and_a_failed_one_says_why() {
        let running = r#"{"kind":"Job","status":{"active":3,"succeeded":1}}"#;
        assert_eq!(job_status(running).unwrap(), JobStatus { active: 3, succeeded: 1, ..Default::default() });
        let failed = r#"{"kind":"Job","status":{"failed":1,"succeeded":3,"conditions":[
            {"type":"FailureTarget","status":"True"},
            {"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}"#;
        let s = job_status(failed).unwrap();
        assert_eq!((s.finished, s.failed), (Some(false), 1));
        assert_eq!(s.reason.as_deref(), Some("BackoffLimitExceeded: Job has reached the specified backoff limit"));
        let done = r#"{"kind":"Job","status":{"succeeded":4,"conditions":[{"type":"Complete","status":"True"}]}}"#;
        assert_eq!(job_status(done).unwrap().finished, Some(true));
        assert!(job_status("{}").unwrap_err().contains("expected a Job"));
        assert!(job_status("no").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn pods_that_cannot_run_are_named_with_the_reason() {
        let pods = r#"{"items":[
          {"metadata":{"name":"sharebench-0-a"},"status":{"phase":"Running"}},
          {"metadata":{"name":"sharebench-1-b"},"status":{"phase":"Pending","conditions":[{"type":"PodScheduled",
            "status":"False","reason":"Unschedulable","message":"0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}},
          {"metadata":{"name":"sharebench-2-c"},"status":{"phase":"Pending","containerStatuses":[
            {"state":{"waiting":{"reason":"ImagePullBackOff","message":"Back-off pulling image"}}}]}}]}"#;
        assert_eq!(
            pod_problems(pods),
            [
                "pod sharebench-1-b Pending Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                "pod sharebench-2-c Pending ImagePullBackOff: Back-off pulling image"
            ]
        );
        assert_eq!(pod_problems(r#"{"items":[]}"#), Vec::<String>::new());
    }
}
