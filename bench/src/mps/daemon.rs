//! A private MPS control daemon for `compare`: its own pipe and log directories (never the system's), started
//! with `nvidia-cuda-mps-control -d`, verified to answer, and stopped with `quit` when dropped, so it also goes
//! away on errors and interrupts.

use super::control::{ControlClient, Invocation};
use super::parse::{self, ControlAnswer};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct PrivateDaemon {
    root: PathBuf,
    client: ControlClient,
    log_dir: PathBuf,
    stopped: bool,
}

fn ps_answer(client: &ControlClient) -> Option<ControlAnswer> {
    match client.run("ps") {
        Invocation::Answered { output, .. } => Some(parse::parse_ps(&output)),
        _ => None,
    }
}

impl PrivateDaemon {
    /// Starts a daemon under a fresh directory in `base` (short, because unix socket paths are limited).
    pub fn start(program: &Path, base: &Path, timeout: Duration) -> Result<PrivateDaemon> {
        let root = base.join(format!("sharebench-mps-{}", std::process::id()));
        let (pipe_dir, log_dir) = (root.join("pipe"), root.join("log"));
        for dir in [&pipe_dir, &log_dir] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        let client = ControlClient { program: program.to_path_buf(), pipe_dir: pipe_dir.clone(), timeout };
        let status = Command::new(program)
            .arg("-d")
            .env("CUDA_MPS_PIPE_DIRECTORY", &pipe_dir)
            .env("CUDA_MPS_LOG_DIRECTORY", &log_dir)
            .status()
            .map_err(|e| Error::new(format!("cannot start {}: {e}", program.display())))?;
        let mut daemon = PrivateDaemon { root, client, log_dir, stopped: false };
        if !status.success() {
            return Err(Error::new(format!("{} -d exited with {status}", program.display()))
                .observed(daemon.log_tail())
                .fix("check that no other MPS daemon owns the GPU (nvidia-smi shows nvidia-cuda-mps-server) and that this user may start one"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match ps_answer(&daemon.client) {
                Some(ControlAnswer::NoServer | ControlAnswer::Clients { .. }) => return Ok(daemon),
                _ if Instant::now() >= deadline => {
                    let _ = daemon.stop();
                    return Err(
                        Error::new("the private MPS daemon did not answer within 10 s").observed(daemon.log_tail())
                    );
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn pipe_dir(&self) -> &Path {
        &self.client.pipe_dir
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_dir.join("control.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        format!("control.log: {}", lines.into_iter().rev().collect::<Vec<_>>().join(" | "))
    }

    /// Sends `quit` and waits until the daemon no longer answers.
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let _ = self.client.run("quit");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(ps_answer(&self.client), Some(ControlAnswer::NoDaemon) | None) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(Error::new(format!("the private MPS daemon in {} did not stop within 15 s", self.pipe_dir().display()))
            .fix(format!(
                "stop it by hand: echo quit | CUDA_MPS_PIPE_DIRECTORY={} nvidia-cuda-mps-control",
                self.pipe_dir().display()
            )))
    }

    /// Copies the daemon's logs into `dir` (evidence for the report).
    pub fn copy_logs(&self, dir: &Path) {
        for name in ["control.log", "server.log"] {
            let _ = std::fs::copy(self.log_dir.join(name), dir.join(format!("mps-{name}")));
        }
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("sharebench: warning: {e}");
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
