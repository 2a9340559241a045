//! Running a group of `sharebench run` worker processes together: spawn them with their own arguments and
//! environment, serve their start barrier on loopback, follow their progress and logs, release or kill workers
//! that cannot go on (one exited before the barrier, one never arrived), and report which failed and why.
//! Used by `compare` and `plan`; Ctrl-C (SIGINT/SIGTERM) stops the group and is remembered for the caller.

use crate::error::{Error, Result};
use crate::{rendezvous, worker};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long workers may linger after the barrier failed before they are killed.
const STUCK_GRACE: Duration = Duration::from_secs(3);
/// How long workers told to stop (SIGTERM) may take to write what they recorded before they are killed: a
/// command's stop grace and the write, well inside Kubernetes' 30 s.
const STOP_GRACE: Duration = Duration::from_secs(20);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub fn install_interrupt_handler() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Whether SIGINT or SIGTERM arrived since [`install_interrupt_handler`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// One worker process: `sharebench run` with these arguments and extra environment.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Names its log file (`<label>.log`) and its lines in failures.
    pub label: String,
    /// The worker index it runs as (`--worker-index`; the first lane's for the streams ceiling).
    pub index: u32,
    /// Arguments after `run` (the barrier flags are added here).
    pub args: Vec<String>,
    pub env: Vec<(String, OsString)>,
    /// Variables of this process's environment the worker must not inherit.
    pub unset: Vec<String>,
}

/// The thread serving a group's barrier: who arrived, or why it failed.
type BarrierServer = std::thread::JoinHandle<Result<std::collections::BTreeMap<u32, String>>>;

/// A place at a group's barrier for peers that are not this runner's worker processes.
#[derive(Debug, Clone)]
pub struct BarrierSeat {
    pub addr: String,
    /// What the barrier admits: the group's size (workers and guests), its token.
    pub identity: rendezvous::RunIdentity,
    pub timeout: Duration,
    /// Set to release the workers when the guests cannot arrive.
    pub cancel: Arc<AtomicBool>,
}

/// How a group ended.
#[derive(Debug, Clone)]
pub struct GroupOutcome {
    pub complete: bool,
    pub seconds: f64,
    pub failures: Vec<String>,
}

/// Where and how to run groups.
pub struct Runner {
    pub exe: PathBuf,
    pub logs: PathBuf,
    pub barrier_timeout: Duration,
    /// Redraw a status line on the terminal.
    pub live: bool,
}

struct ChildWorker {
    label: String,
    child: Child,
    progress: SharedProgress,
    tail: SharedTail,
    reader: std::thread::JoinHandle<()>,
}

type SharedProgress = Arc<Mutex<(u64, Option<u64>)>>;
type SharedTail = Arc<Mutex<Vec<String>>>;

/// Follows a child's stderr: progress lines update `progress`, every line goes to its log file.
fn follow(child: &mut Child, log: PathBuf) -> (SharedProgress, SharedTail, std::thread::JoinHandle<()>) {
    let progress = Arc::new(Mutex::new((0, None)));
    let tail = Arc::new(Mutex::new(Vec::new()));
    let stderr = child.stderr.take();
    let (p, t) = (progress.clone(), tail.clone());
    let reader = std::thread::spawn(move || {
        let mut file = std::fs::File::create(&log).ok();
        let Some(stderr) = stderr else { return };
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some((_, done, total, _)) = worker::parse_progress(&line) {
                if let Ok(mut g) = p.lock() {
                    *g = (done, total);
                }
            } else if let Ok(mut g) = t.lock() {
                g.push(line);
                let excess = g.len().saturating_sub(8);
                g.drain(..excess);
            }
        }
    });
    (progress, tail, reader)
}

/// A worker's arguments with the barrier flags added, before a command's `--` (everything after it is the
/// command's own).
fn with_barrier(args: &[String], barrier: Option<&str>, timeout: Duration) -> Vec<String> {
    let mut args = args.to_vec();
    if let Some(addr) = barrier {
        let flags = vec![
            "--barrier".to_string(),
            addr.to_string(),
            "--barrier-timeout".into(),
            format!("{}ms", timeout.as_millis()),
        ];
        insert_before_command(&mut args, flags);
    }
    args
}

/// Puts worker flags into its arguments before a command's `--` (everything after it is the command's own).
pub fn insert_before_command(args: &mut Vec<String>, flags: Vec<String>) {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    args.splice(at..at, flags);
}

impl Runner {
    fn spawn(&self, spec: &WorkerSpec, barrier: Option<&str>, token: &str) -> Result<ChildWorker> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run").args(with_barrier(&spec.args, barrier, self.barrier_timeout));
        for name in &spec.unset {
            cmd.env_remove(name);
        }
        // In the environment, not the arguments: other users see a process's arguments.
        cmd.env("SHAREBENCH_BARRIER_TOKEN", token);
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
            .env(worker::PROGRESS_ENV, "1")
            .env_remove("JOB_COMPLETION_INDEX");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        // A process group of its own: Ctrl-C in the terminal reaches this process, which tells each worker once
        // (SIGTERM) to stop and keep what it recorded; a second signal straight from the terminal would end it
        // before it wrote.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().map_err(|e| Error::new(format!("cannot start worker {}: {e}", spec.label)))?;
        let (progress, tail, reader) = follow(&mut child, self.logs.join(format!("{}.log", spec.label)));
        Ok(ChildWorker { label: spec.label.clone(), child, progress, tail, reader })
    }

    fn status_line(title: &str, workers: &[ChildWorker], started: Instant) -> String {
        let parts: Vec<String> = workers
            .iter()
            .map(|w| {
                let (done, total) = w.progress.lock().map(|g| *g).unwrap_or((0, None));
                match total {
                    Some(t) => format!("{done}/{t}"),
                    None => done.to_string(),
                }
            })
            .collect();
        format!("[{title}] {:.1}s kernels per worker: {}", started.elapsed().as_secs_f64(), parts.join(" "))
    }

    /// Runs the workers to the end; failures of single workers are recorded, not fatal. With more than one
    /// worker they meet at a barrier first.
    pub fn run_group(&self, title: &str, specs: &[WorkerSpec]) -> Result<GroupOutcome> {
        self.run_group_beside(title, specs, 0, |_| ()).map(|(outcome, ())| outcome)
    }

    /// [`Runner::run_group`] with `guests` more barrier places that are not worker processes of this runner:
    /// `beside` runs on a thread of its own while the workers run, given the seat it takes them with (the
    /// observer effect's tenants alone, released with the workers). When it cancels the seat (its side cannot
    /// arrive), the workers are released at once instead of at the barrier's timeout.
    pub fn run_group_beside<T: Send>(
        &self,
        title: &str,
        specs: &[WorkerSpec],
        guests: u32,
        beside: impl FnOnce(Option<BarrierSeat>) -> T + Send,
    ) -> Result<(GroupOutcome, T)> {
        let processes = specs.len() as u32 + guests;
        let cancel = Arc::new(AtomicBool::new(false));
        // A token of this group's own: only the workers started here know it (another process on this machine
        // that finds the loopback port knows the worker count, not the token).
        let token = rendezvous::new_token()?;
        let mut seat = None;
        let barrier = if processes > 1 {
            let listener = rendezvous::bind("127.0.0.1:0")?;
            let addr = listener.local_addr().map_err(|e| Error::new(format!("barrier socket: {e}")))?.to_string();
            let (timeout, cancel) = (self.barrier_timeout, cancel.clone());
            let identity =
                rendezvous::RunIdentity { token: Some(token.clone()), ..rendezvous::RunIdentity::new(processes) };
            seat = (guests > 0).then(|| BarrierSeat {
                addr: addr.clone(),
                identity: identity.clone(),
                timeout: self.barrier_timeout,
                cancel: cancel.clone(),
            });
            Some((addr, std::thread::spawn(move || rendezvous::serve_cancellable(listener, identity, timeout, cancel))))
        } else {
            None
        };
        std::thread::scope(|scope| {
            let guest = scope.spawn(move || beside(seat));
            let outcome = self.supervise(title, specs, barrier, &token, &cancel);
            if outcome.is_err() {
                // The workers could not be started: the guests must not wait for them.
                cancel.store(true, Ordering::SeqCst);
            }
            let guest = guest.join().map_err(|_| Error::new("the tenants run beside the workers panicked"))?;
            Ok((outcome?, guest))
        })
    }

    fn supervise(
        &self,
        title: &str,
        specs: &[WorkerSpec],
        mut barrier: Option<(String, BarrierServer)>,
        token: &str,
        cancel: &AtomicBool,
    ) -> Result<GroupOutcome> {
        let started = Instant::now();
        let mut workers = Vec::new();
        for spec in specs {
            workers.push(self.spawn(spec, barrier.as_ref().map(|b| b.0.as_str()), token)?);
        }
        let mut failures = Vec::new();
        let mut statuses = vec![None; workers.len()];
        let mut barrier_failed_at: Option<Instant> = None;
        let mut stopping_since: Option<Instant> = None;
        while statuses.iter().any(|s| s.is_none()) {
            if interrupted() && stopping_since.is_none() {
                // Each worker writes what it recorded, marked terminated, and exits; stragglers are killed.
                for (w, status) in workers.iter().zip(statuses.iter()) {
                    if status.is_none() {
                        let pid = nix::unistd::Pid::from_raw(w.child.id() as i32);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                    }
                }
                failures.push("interrupted: the workers were told to stop and keep what they recorded".to_string());
                stopping_since = Some(Instant::now());
            }
            if stopping_since.is_some_and(|t| t.elapsed() > STOP_GRACE) {
                for w in workers.iter_mut() {
                    let _ = w.child.kill();
                }
                break;
            }
            for (w, status) in workers.iter_mut().zip(statuses.iter_mut()) {
                if status.is_none() {
                    *status = w.child.try_wait().ok().flatten();
                }
            }
            // A worker that ends while the barrier still waits will never arrive: release the others now.
            if barrier.as_ref().is_some_and(|b| !b.1.is_finished()) && statuses.iter().any(|s| s.is_some()) {
                cancel.store(true, Ordering::SeqCst);
            }
            // Once the barrier has failed, a worker that never reached it (stopped, hung) would wait forever.
            if barrier_failed_at.is_none() && barrier.as_ref().is_some_and(|b| b.1.is_finished()) {
                if let Some((_, server)) = barrier.take() {
                    if let Ok(Err(e)) = server.join() {
                        failures.push(e.problem);
                        barrier_failed_at = Some(Instant::now());
                    }
                }
            }
            if barrier_failed_at.is_some_and(|t| t.elapsed() > STUCK_GRACE) {
                for (w, status) in workers.iter_mut().zip(statuses.iter()) {
                    if status.is_none() {
                        let _ = w.child.kill();
                    }
                }
            }
            if self.live {
                eprint!("\r{}   ", Self::status_line(title, &workers, started));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (w, status) in workers.into_iter().zip(statuses) {
            let status = status.or_else(|| w.child.wait_with_output().ok().map(|o| o.status));
            let _ = w.reader.join();
            if !status.is_some_and(|s| s.success()) {
                let last = w.tail.lock().map(|t| t.join(" | ")).unwrap_or_default();
                failures.push(format!(
                    "worker {} exited with {}: {last}",
                    w.label,
                    status.map(|s| s.to_string()).unwrap_or("?".into())
                ));
            }
        }
        if let Some((_, server)) = barrier {
            if let Ok(Err(e)) = server.join() {
                failures.push(e.problem);
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if self.live {
            eprint!("\r\x1b[K");
        }
        let state =
            if failures.is_empty() { "done".to_string() } else { format!("INCOMPLETE: {}", failures.join("; ")) };
        eprintln!("[{title}] {state} in {seconds:.1} s");
        Ok(GroupOutcome { complete: failures.is_empty(), seconds, failures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barrier_flags_go_before_a_commands_double_dash() {
        let args: Vec<String> = ["--exec", "--", "python3", "serve.py"].map(String::from).to_vec();
        let with = with_barrier(&args, Some("127.0.0.1:9"), Duration::from_secs(2));
        assert_eq!(
            with,
            ["--exec", "--barrier", "127.0.0.1:9", "--barrier-timeout", "2000ms", "--", "python3", "serve.py"]
        );
        let plain = with_barrier(&["--kernels".into(), "5".into()], Some("a:1"), Duration::from_secs(1));
        assert_eq!(plain[2], "--barrier");
        assert_eq!(with_barrier(&args, None, Duration::from_secs(1)), args);
    }
}
