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
    tag: String,
    stopped: bool,
}

fn ps_answer(client: &ControlClient) -> Option<ControlAnswer> {
    match client.run("ps") {
        Invocation::Answered { output, .. } => Some(parse::parse_ps(&output)),
        _ => None,
    }
}

impl PrivateDaemon {
    /// Starts a daemon under a fresh directory in `base` (short, because unix socket paths are limited), named
    /// with `tag` so that one process can run several. With `visible_devices` the daemon serves only those GPUs
    /// (its CUDA_VISIBLE_DEVICES); its clients then see them renumbered from 0 and must not set the variable.
    /// Without, it inherits this process's CUDA_VISIBLE_DEVICES.
    pub fn start(
        program: &Path,
        base: &Path,
        timeout: Duration,
        tag: &str,
        visible_devices: Option<&str>,
    ) -> Result<PrivateDaemon> {
        let root = base.join(format!("sharebench-mps-{}{tag}", std::process::id()));
        let (pipe_dir, log_dir) = (root.join("pipe"), root.join("log"));
        for dir in [&pipe_dir, &log_dir] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        let client = ControlClient { program: program.to_path_buf(), pipe_dir: pipe_dir.clone(), timeout };
        let mut command = Command::new(program);
        command.arg("-d").env("CUDA_MPS_PIPE_DIRECTORY", &pipe_dir).env("CUDA_MPS_LOG_DIRECTORY", &log_dir);
        if let Some(devices) = visible_devices {
            command.env("CUDA_VISIBLE_DEVICES", devices);
        }
        let status = command.status().map_err(|e| Error::new(format!("cannot start {}: {e}", program.display())))?;
        let mut daemon = PrivateDaemon { root, client, log_dir, tag: tag.to_string(), stopped: false };
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

    /// Sends `quit`, waits until the daemon and its servers have exited, and kills what is left after 10 s
    /// (they are ours alone: the pipe directory is private).
    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut pids: Vec<u32> = match self.client.query("get_server_list") {
            Invocation::Answered { output, .. } => parse::parse_server_list(&output).unwrap_or_default(),
            _ => Vec::new(),
        };
        pids.extend(
            std::fs::read_to_string(self.pipe_dir().join(super::observe::PID_FILE))
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok()),
        );
        let _ = self.client.run("quit");
        let alive = |pids: &[u32]| {
            pids.iter().copied().filter(|p| Path::new(&format!("/proc/{p}")).exists()).collect::<Vec<_>>()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !alive(&pids).is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = alive(&pids);
        if left.is_empty() {
            return Ok(());
        }
        for signal in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
            for &pid in &left {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
            }
            std::thread::sleep(Duration::from_secs(1));
            if alive(&left).is_empty() {
                break;
            }
        }
        match alive(&left).as_slice() {
            [] => Ok(()),
            still => {
                Err(Error::new(format!("the private MPS daemon's processes {still:?} did not exit")).fix(format!(
                    "stop them by hand: kill -9 {}",
                    still.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
                )))
            }
        }
    }

    /// Copies the daemon's logs into `dir` (evidence for the report).
    pub fn copy_logs(&self, dir: &Path) {
        for name in ["control.log", "server.log"] {
            let _ = std::fs::copy(self.log_dir.join(name), dir.join(format!("mps{}-{name}", self.tag)));
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
