//! Runs `nvidia-cuda-mps-control` commands with a deadline. The control client has been seen to hang on broken
//! mounts and older drivers, so every call is bounded: a hang is reported as such, never waited out.

use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const PROGRAM: &str = "nvidia-cuda-mps-control";

/// How one control command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Invocation {
    /// It exited; `output` is stdout and stderr together.
    Answered { output: String, exit_code: Option<i32>, elapsed_ms: u64 },
    /// It was still running at the deadline and was killed.
    TimedOut { after_ms: u64 },
    /// It could not be started.
    NotStarted { reason: String },
}

/// The control client for one pipe directory.
#[derive(Debug, Clone)]
pub struct ControlClient {
    pub program: PathBuf,
    pub pipe_dir: PathBuf,
    pub timeout: Duration,
}

/// Finds `nvidia-cuda-mps-control`: the explicit path if given, else the first match on `PATH`.
pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(PROGRAM)).find(|p| p.is_file())
}

fn drain(mut reader: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = reader.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// What the control client prints when the daemon is busy with another client (seen on driver 580 with eight
/// workers checking at once): worth retrying, not a diagnosis.
pub const BUSY: &str = "Cannot send command to MPS control daemon process";

impl ControlClient {
    /// Like [`ControlClient::run`], but retries while the daemon answers [`BUSY`], until the timeout.
    pub fn query(&self, command: &str) -> Invocation {
        let started = Instant::now();
        loop {
            let answer = self.run(command);
            match &answer {
                Invocation::Answered { output, .. } if output.contains(BUSY) && started.elapsed() < self.timeout => {
                    std::thread::sleep(Duration::from_millis(20 + (std::process::id() % 30) as u64));
                }
                _ => return answer,
            }
        }
    }

    /// Sends `command` (e.g. `ps`) on stdin and waits at most `timeout` for the answer.
    pub fn run(&self, command: &str) -> Invocation {
        let started = Instant::now();
        let spawned = Command::new(&self.program)
            .env("CUDA_MPS_PIPE_DIRECTORY", &self.pipe_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return Invocation::NotStarted { reason: format!("{}: {e}", self.program.display()) },
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(format!("{command}\n").as_bytes());
        }
        let stdout = child.stdout.take().map(drain);
        let stderr = child.stderr.take().map(drain);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() >= self.timeout => break None,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => {
                    return Invocation::NotStarted { reason: format!("waiting for {}: {e}", self.program.display()) }
                }
            }
        };
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            return Invocation::TimedOut { after_ms: self.timeout.as_millis() as u64 };
        };
        let mut output = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
        output.push_str(&stderr.and_then(|h| h.join().ok()).unwrap_or_default());
        Invocation::Answered { output, exit_code: status.code(), elapsed_ms: started.elapsed().as_millis() as u64 }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Writes an executable stand-in for the control client that runs `body` (a shell script).
    pub fn fake_control(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join(PROGRAM);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn client(program: PathBuf, timeout_ms: u64) -> ControlClient {
        ControlClient { program, pipe_dir: "/nonexistent".into(), timeout: Duration::from_millis(timeout_ms) }
    }

    #[test]
    fn answers_are_captured_with_the_pipe_dir_passed_on() {
        let dir = tempfile::tempdir().unwrap();
        let fake =
            fake_control(dir.path(), "read cmd; echo \"$cmd in $CUDA_MPS_PIPE_DIRECTORY\"; echo oops >&2; exit 1");
        match client(fake, 5000).run("ps") {
            Invocation::Answered { output, exit_code, .. } => {
                assert_eq!(output, "ps in /nonexistent\noops\n");
                assert_eq!(exit_code, Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_busy_daemon_is_asked_again() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("asked");
        let body = format!(
            "if [ -e {m} ]; then echo 'Server not found'; else touch {m}; echo '{BUSY}'; fi",
            m = marker.display()
        );
        let fake = fake_control(dir.path(), &body);
        match client(fake, 5000).query("ps") {
            Invocation::Answered { output, .. } => assert_eq!(output, "Server not found\n"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_hang_is_cut_off_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let fake = fake_control(dir.path(), "exec sleep 30");
        let started = Instant::now();
        assert_eq!(client(fake, 300).run("ps"), Invocation::TimedOut { after_ms: 300 });
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_program_is_not_started() {
        assert!(matches!(client("/nonexistent/x".into(), 100).run("ps"), Invocation::NotStarted { .. }));
        assert_eq!(locate(Some(Path::new("/nonexistent/x"))), None);
    }
}
