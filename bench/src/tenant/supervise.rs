//! Running the command: start it in a process group of its own with the worker's environment and a FIFO for
//! protocol lines, follow what it reports, tell it when the common window starts, and stop it afterwards
//! (SIGTERM to its group, SIGKILL after a grace period). Every line it wrote is kept, valid or not.

use super::protocol::{self, Message, ProtocolError};
use super::window::{Received, Window};
use crate::error::{Error, Result};
use crate::fsio::{self, Overwrite};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Written to the FIFO by the worker itself once the command is gone: everything before it has been read.
const END_OF_LINES: &str = "\u{0}sharebench-end";
/// Protocol errors kept word for word (the rest are counted).
pub const ERRORS_KEPT: usize = 5;

/// A protocol line that could not be read, with its line number in the FIFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub error: ProtocolError,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself (before it was asked to stop).
    Exited(ExitStatus),
    /// It exited after SIGTERM, within the grace period.
    Terminated(ExitStatus),
    /// It ignored SIGTERM and was killed after the grace period.
    Killed,
}

/// What the worker is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready {
        after: Duration,
    },
    ExitedFirst(ExitStatus),
    TimedOut,
    /// The worker was told to stop (SIGTERM) before the command was ready.
    Stopped,
}

/// Everything the command reported.
#[derive(Debug, Default)]
pub struct Reported {
    pub ready_at_unix_ns: Option<u64>,
    pub requests: Vec<Received>,
    pub errors: Vec<LineError>,
    pub error_count: u64,
}

/// A protocol line: its number, when it arrived (Unix ns) and what it says.
pub type Line = (u64, u64, std::result::Result<Option<Message>, ProtocolError>);

impl Reported {
    /// Keeps what one protocol line says: `ready`, a request, or an error (the first few word for word).
    pub fn take(&mut self, (number, at, parsed): Line) {
        match parsed {
            Ok(Some(Message::Ready)) => {
                self.ready_at_unix_ns.get_or_insert(at);
            }
            Ok(Some(Message::Request(request))) => self.requests.push(Received { at_unix_ns: at, request }),
            Ok(None) => {}
            Err(error) => {
                self.error_count += 1;
                if self.errors.len() < ERRORS_KEPT {
                    eprintln!("sharebench: protocol line {number} of the command is not understood: {error}");
                    self.errors.push(LineError { line: number, error });
                }
            }
        }
    }
}

/// A running command.
pub struct Tenant {
    child: Child,
    scratch: PathBuf,
    start_file: PathBuf,
    /// The FIFO held open for writing too: it never reports end-of-file, and carries the end marker.
    fifo_writer: std::fs::File,
    lines: Receiver<Line>,
    reader: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    exited: Option<ExitStatus>,
    pub reported: Reported,
}

/// Reads protocol lines from the FIFO until the end marker, stamping each with its arrival time.
fn read_lines(fifo: std::fs::File, lines: mpsc::Sender<Line>) {
    let mut reader = BufReader::new(fifo);
    let mut buffer = Vec::new();
    let mut number = 0u64;
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let at = crate::host::unix_now_ns();
        let text = String::from_utf8_lossy(&buffer);
        let text = text.trim_end_matches(['\n', '\r']);
        if text == END_OF_LINES {
            return;
        }
        number += 1;
        if lines.send((number, at, protocol::parse_line(text))).is_err() {
            return;
        }
    }
}

fn command_text(command: &[String]) -> String {
    command.join(" ")
}

impl Tenant {
    /// Starts `command` with `env` added, its stdout sent to this process's stderr (stdout carries the result).
    /// The protocol FIFO and the start file live in a private directory under `scratch_parent`.
    pub fn start(command: &[String], env: &[(String, String)], scratch_parent: &Path) -> Result<Tenant> {
        let program = command
            .first()
            .ok_or_else(|| Error::flag("--exec", "needs a command after `--`, e.g. --exec -- python3 serve.py"))?;
        let scratch = scratch_parent.join(format!("sharebench-tenant-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| Error::io("create directory", &scratch, e))?;
        let fifo = scratch.join("report");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
            .map_err(|e| Error::new(format!("cannot create the protocol FIFO {}: {e}", fifo.display())))?;
        // Read and write: opening does not wait for a writer, and reading never sees end-of-file.
        let open = || std::fs::OpenOptions::new().read(true).write(true).open(&fifo);
        let fifo_reader = open().map_err(|e| Error::io("open", &fifo, e))?;
        let fifo_writer = open().map_err(|e| Error::io("open", &fifo, e))?;
        let start_file = scratch.join("start");
        let stdout = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::new(format!("cannot pass stderr to the command: {e}")))?;
        let mut cmd = Command::new(program);
        cmd.args(&command[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env(protocol::env::REPORT, &fifo)
            .env(protocol::env::START_FILE, &start_file)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::inherit())
            .process_group(0);
        // SAFETY: between fork and exec only prctl, which is async-signal-safe: the command dies with its worker.
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from));
        }
        // Stamped before the spawn: the command's time to get ready includes its start, never less than it took.
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            Error::new(format!("cannot start the command `{}`: {e}", command_text(command))).fix(
                "check that the program exists in this image and is executable (give its full path if PATH differs)",
            )
        })?;
        let (sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || read_lines(fifo_reader, sender));
        Ok(Tenant {
            child,
            scratch,
            start_file,
            fifo_writer,
            lines,
            reader: Some(reader),
            started,
            exited: None,
            reported: Reported::default(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn take(&mut self, line: Line) {
        self.reported.take(line);
    }

    /// Takes the lines that arrived within `wait`, and notes whether the command has exited.
    fn pump(&mut self, wait: Duration) {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.take(line);
                while let Ok(line) = self.lines.try_recv() {
                    self.take(line);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
        }
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
    }

    /// Waits until the command reports `ready`, exits, or `timeout` passes.
    pub fn wait_ready(&mut self, timeout: Duration) -> Readiness {
        let deadline = self.started + timeout;
        loop {
            self.pump(Duration::from_millis(50));
            if self.reported.ready_at_unix_ns.is_some() {
                return Readiness::Ready { after: self.started.elapsed() };
            }
            if let Some(status) = self.exited {
                // Lines written just before exiting may still be in the FIFO.
                self.pump(Duration::from_millis(100));
                if self.reported.ready_at_unix_ns.is_some() {
                    return Readiness::Ready { after: self.started.elapsed() };
                }
                return Readiness::ExitedFirst(status);
            }
            if Instant::now() >= deadline {
                return Readiness::TimedOut;
            }
            if crate::termination::requested() {
                return Readiness::Stopped;
            }
        }
    }

    /// Tells the command the window (the file `SHAREBENCH_START_FILE` names appears, written atomically).
    pub fn announce(&self, window: Window) -> Result<()> {
        let text = format!("{} {}\n", window.start_unix_ns, window.end_unix_ns);
        fsio::write_atomic(&self.start_file, text.as_bytes(), Overwrite::Allow)
    }

    /// Follows the command until `end_unix_ns`; returns early with its status if it exits first.
    pub fn follow_until(&mut self, end_unix_ns: u64) -> Option<ExitStatus> {
        loop {
            let now = crate::host::unix_now_ns();
            // A worker told to stop (SIGTERM) ends the window now; the caller stops the command.
            if now >= end_unix_ns || crate::termination::requested() {
                return None;
            }
            self.pump(Duration::from_nanos(end_unix_ns - now).min(Duration::from_millis(50)));
            if let Some(status) = self.exited {
                return Some(status);
            }
        }
    }

    /// Stops the command: SIGTERM to its process group, SIGKILL after `grace`; then reads every line it wrote.
    pub fn stop(&mut self, grace: Duration) -> Ending {
        let group = Pid::from_raw(self.child.id() as i32);
        let ending = match self.exited {
            Some(status) => Ending::Exited(status),
            None => {
                let ending = terminate_group(self.child.id(), grace, |wait| {
                    self.pump(wait);
                    self.exited
                });
                if ending == Ending::Killed {
                    let _ = self.child.wait();
                }
                ending
            }
        };
        // Whatever the command left behind in its group goes too.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = writeln!(self.fifo_writer, "{END_OF_LINES}");
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        while let Ok(line) = self.lines.try_recv() {
            self.take(line);
        }
        ending
    }
}

/// Ends the process group `pid` leads: SIGTERM, then `poll` (given how long it may wait) until it reports the
/// leader's exit status, SIGKILL to the group after `grace`. The caller reaps a killed leader.
pub fn terminate_group(pid: u32, grace: Duration, mut poll: impl FnMut(Duration) -> Option<ExitStatus>) -> Ending {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = poll(Duration::from_millis(20)) {
            return Ending::Terminated(status);
        }
        if Instant::now() >= deadline {
            let _ = killpg(group, Signal::SIGKILL);
            return Ending::Killed;
        }
    }
}

impl Drop for Tenant {
    fn drop(&mut self) {
        if self.exited.is_none() && self.child.try_wait().ok().flatten().is_none() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// An exit status in words: `exit status 3`, `killed by signal 9 (SIGKILL)`.
pub fn describe_status(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| "?".into());
            format!("killed by signal {sig} ({name})")
        }
        _ => "ended".into(),
    }
}
