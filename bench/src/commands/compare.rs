//! `sharebench compare`: the default job on one GPU machine. Runs the same workload as N worker processes under
//! time-slicing (verified: not MPS clients), under MPS (a private daemon, or `--mps-pipe-dir`; verified: all
//! joined), and as N streams in one process (the ceiling for spatial sharing), for each worker count; then
//! writes the report into the run directory.
//!
//! Workers are child processes running `sharebench run`; they meet at a barrier this process serves on
//! loopback. The private daemon is stopped on every exit path, Ctrl-C included.

use crate::cli::{CompareArgs, CompareMode};
use crate::error::{exit, Error, Result};
use crate::fsio::{self, Overwrite};
use crate::mps::daemon::PrivateDaemon;
use crate::{gpu, host, rendezvous, worker};
use serde::Serialize;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// How long workers may linger after the barrier failed before they are killed.
const STUCK_GRACE: Duration = Duration::from_secs(3);

extern "C" fn on_interrupt(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_interrupt_handler() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_interrupt), SaFlags::empty(), SigSet::empty());
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// One step of the plan: a mode at a worker count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    pub mode: CompareMode,
    pub workers: u32,
}

/// The phases in order: the solo baseline first (unless asked not to or already in the sweep), then each
/// worker count through each mode.
pub fn plan_phases(counts: &[u32], modes: &[CompareMode], solo: bool) -> Vec<Phase> {
    let mut phases = Vec::new();
    if solo && !counts.contains(&1) {
        phases.push(Phase { mode: CompareMode::Timeslice, workers: 1 });
    }
    for &workers in counts {
        for &mode in modes {
            if !(mode == CompareMode::Streams && workers == 1 && modes.contains(&CompareMode::Timeslice)) {
                phases.push(Phase { mode, workers });
            }
        }
    }
    phases
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseOutcome {
    pub mode: String,
    pub workers: u32,
    pub complete: bool,
    pub seconds: f64,
    pub failures: Vec<String>,
}

/// `compare.json`: what was asked, what ran, whether the run directory is complete.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRecord {
    pub run_id: String,
    pub command_line: Vec<String>,
    pub complete: bool,
    pub interrupted: bool,
    pub mps_pipe_dir: Option<String>,
    pub mps_daemon: String,
    pub phases: Vec<PhaseOutcome>,
    pub seconds: f64,
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

struct Context<'a> {
    args: &'a CompareArgs,
    exe: PathBuf,
    run_id: String,
    results: PathBuf,
    logs: PathBuf,
    no_mps_dir: PathBuf,
    live: bool,
}

impl Context<'_> {
    fn spawn(&self, phase: Phase, index: u32, barrier: Option<&str>, pipe_dir: &Path) -> Result<ChildWorker> {
        let label = format!("w{}-{}-{index}", phase.workers, phase.mode.label());
        let mut cmd = Command::new(&self.exe);
        cmd.arg("run").args(self.args.workload.to_args());
        cmd.args(["--mode", phase.mode.label(), "--gpu", &self.args.gpu.to_string(), "--run-id", &self.run_id]);
        match phase.mode {
            CompareMode::Streams => {
                cmd.args(["--streams", &phase.workers.to_string(), "--workers", &phase.workers.to_string()])
            }
            _ => cmd.args(["--workers", &phase.workers.to_string(), "--worker-index", &index.to_string()]),
        };
        if let Some(addr) = barrier {
            cmd.args(["--barrier", addr, "--barrier-timeout", &format!("{}ms", self.args.barrier_timeout.as_millis())]);
        }
        if let Some(p) = &self.args.control.mps_control {
            cmd.arg("--mps-control").arg(p);
        }
        cmd.args(["--mps-timeout", &format!("{}ms", self.args.control.mps_timeout.as_millis())]);
        cmd.arg("--out").arg(self.results.join(format!("{label}.json")));
        if self.args.inject_fault && index == 0 && phase.workers > 1 {
            let half = self.args.workload.kernels.unwrap_or(1) / 2;
            cmd.args(["--inject-fault-after", &half.to_string()]);
        }
        if self.args.force {
            cmd.arg("--force");
        }
        cmd.env("CUDA_MPS_PIPE_DIRECTORY", pipe_dir).env(worker::PROGRESS_ENV, "1").env_remove("JOB_COMPLETION_INDEX");
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::new(format!("cannot start worker {label}: {e}")))?;
        let (progress, tail, reader) = follow(&mut child, self.logs.join(format!("{label}.log")));
        Ok(ChildWorker { label, child, progress, tail, reader })
    }

    fn status_line(&self, phase: Phase, workers: &[ChildWorker], started: Instant) -> String {
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
        format!(
            "[{} x{}] {:.1}s kernels per worker: {}",
            phase.mode.label(),
            phase.workers,
            started.elapsed().as_secs_f64(),
            parts.join(" ")
        )
    }

    /// Runs one phase to the end; failures of single workers are recorded, not fatal.
    fn run_phase(&self, phase: Phase, pipe_dir: &Path) -> Result<PhaseOutcome> {
        let started = Instant::now();
        let processes = if phase.mode == CompareMode::Streams { 1 } else { phase.workers };
        let cancel = Arc::new(AtomicBool::new(false));
        let mut barrier = if processes > 1 {
            let listener = rendezvous::bind("127.0.0.1:0")?;
            let addr = listener.local_addr().map_err(|e| Error::new(format!("barrier socket: {e}")))?.to_string();
            let (timeout, cancel) = (self.args.barrier_timeout, cancel.clone());
            Some((
                addr,
                std::thread::spawn(move || rendezvous::serve_cancellable(listener, processes, timeout, cancel)),
            ))
        } else {
            None
        };
        let mut workers = Vec::new();
        for i in 0..processes {
            workers.push(self.spawn(phase, i, barrier.as_ref().map(|b| b.0.as_str()), pipe_dir)?);
        }
        let mut failures = Vec::new();
        let mut statuses = vec![None; workers.len()];
        let mut barrier_failed_at: Option<Instant> = None;
        while statuses.iter().any(|s| s.is_none()) {
            if INTERRUPTED.load(Ordering::SeqCst) {
                for w in workers.iter_mut() {
                    let _ = w.child.kill();
                }
                failures.push("interrupted".to_string());
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
                eprint!("\r{}   ", self.status_line(phase, &workers, started));
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
        eprintln!("[{} x{}] {state} in {seconds:.1} s", phase.mode.label(), phase.workers);
        Ok(PhaseOutcome {
            mode: phase.mode.label().into(),
            workers: phase.workers,
            complete: failures.is_empty(),
            seconds,
            failures,
        })
    }
}

fn default_run_dir() -> PathBuf {
    let secs = host::unix_now_ns() / 1_000_000_000;
    PathBuf::from(format!("sharebench-compare-{secs}"))
}

fn prepare_run_dir(dir: &Path, force: bool) -> Result<()> {
    let non_empty = std::fs::read_dir(dir).map(|mut d| d.next().is_some()).unwrap_or(false);
    if non_empty && !force {
        return Err(Error::new(format!("run directory {} is not empty", dir.display()))
            .fix("choose another --out, or pass --force to replace its results"));
    }
    for sub in ["results", "logs"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io("create directory", &dir.join(sub), e))?;
    }
    Ok(())
}

pub fn execute(args: &CompareArgs) -> Result<i32> {
    super::run::plan(&args.workload)?;
    super::run::shape(&args.workload, 1)?;
    if args.modes.is_empty() {
        return Err(Error::flag("--modes", "name at least one of timeslice, mps, streams"));
    }
    gpu::ensure_driver()?;
    let started = Instant::now();
    let dir = args.out.clone().unwrap_or_else(default_run_dir);
    prepare_run_dir(&dir, args.force)?;
    let exe = std::env::current_exe().map_err(|e| Error::new(format!("cannot find the sharebench executable: {e}")))?;
    let scratch = std::env::temp_dir().join(format!("sharebench-{}", std::process::id()));
    let no_mps_dir = scratch.join("no-mps");
    std::fs::create_dir_all(&no_mps_dir).map_err(|e| Error::io("create directory", &no_mps_dir, e))?;
    install_interrupt_handler();
    let ctx = Context {
        args,
        exe,
        run_id: format!("compare-{}", host::unix_now_ns() / 1_000_000_000),
        results: dir.join("results"),
        logs: dir.join("logs"),
        no_mps_dir,
        live: std::io::stderr().is_terminal(),
    };
    let phases = plan_phases(&args.workers.0, &args.modes, !args.no_solo);
    eprintln!("sharebench compare: {} phases, run directory {}", phases.len(), dir.display());
    let needs_mps = phases.iter().any(|p| p.mode == CompareMode::Mps);
    let mut daemon = None;
    let (mps_pipe_dir, mps_daemon) = match (&args.mps_pipe_dir, needs_mps) {
        (Some(p), _) => (Some(p.clone()), format!("existing daemon at {}", p.display())),
        (None, true) => {
            let program = crate::mps::control::locate(args.control.mps_control.as_deref()).ok_or_else(|| {
                Error::new("nvidia-cuda-mps-control not found on PATH: cannot start an MPS daemon")
                    .fix("install the NVIDIA driver utilities, pass --mps-control PATH, or leave mps out of --modes")
            })?;
            let d = PrivateDaemon::start(&program, Path::new("/tmp"), args.control.mps_timeout)?;
            eprintln!("sharebench compare: started a private MPS daemon (pipe directory {})", d.pipe_dir().display());
            let pipe = d.pipe_dir().to_path_buf();
            daemon = Some(d);
            (Some(pipe), "private daemon started and stopped by compare".to_string())
        }
        (None, false) => (None, "not used".to_string()),
    };
    let mut outcomes = Vec::new();
    for phase in &phases {
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
        let pipe_dir = match phase.mode {
            CompareMode::Mps => mps_pipe_dir.clone().unwrap_or_default(),
            _ => ctx.no_mps_dir.clone(),
        };
        outcomes.push(ctx.run_phase(*phase, &pipe_dir)?);
    }
    if let Some(mut d) = daemon.take() {
        d.copy_logs(&ctx.logs);
        d.stop()?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    let complete = !interrupted && outcomes.len() == phases.len() && outcomes.iter().all(|o| o.complete);
    let record = CompareRecord {
        run_id: ctx.run_id.clone(),
        command_line: std::env::args().collect(),
        complete,
        interrupted,
        mps_pipe_dir: mps_pipe_dir.map(|p| p.display().to_string()),
        mps_daemon,
        phases: outcomes,
        seconds: started.elapsed().as_secs_f64(),
    };
    let text = serde_json::to_string_pretty(&record).map_err(|e| Error::new(e.to_string()))?;
    fsio::write_atomic(&dir.join("compare.json"), text.as_bytes(), Overwrite::Allow)?;
    if !complete {
        fsio::write_atomic(
            &dir.join("INCOMPLETE"),
            b"see compare.json: phases with failures, or interrupted\n",
            Overwrite::Allow,
        )?;
    }
    let results = dir.join("results").display().to_string();
    let notes: Vec<String> = record
        .phases
        .iter()
        .flat_map(|p| p.failures.iter().map(move |f| format!("compare phase {} x{}: {f}", p.mode, p.workers)))
        .collect();
    match super::report::produce(&[results], true, Some(&dir), Overwrite::from_force(true), &notes) {
        Ok((_, summary)) => print!("{summary}"),
        Err(e) => eprintln!("sharebench: error: no report: {e}"),
    }
    eprintln!("sharebench compare: finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(if complete { exit::OK } else { exit::INCOMPLETE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solo_baseline_comes_first_and_is_not_repeated() {
        let all = [CompareMode::Timeslice, CompareMode::Mps, CompareMode::Streams];
        let p = plan_phases(&[4], &all, true);
        assert_eq!(p[0], Phase { mode: CompareMode::Timeslice, workers: 1 });
        assert_eq!(p.len(), 4);
        let sweep = plan_phases(&[1, 2], &all, true);
        // 1 worker: timeslice and mps (streams x1 is the same as timeslice x1); 2 workers: all three.
        assert_eq!(sweep.len(), 5);
        assert_eq!(plan_phases(&[4], &[CompareMode::Mps], false), vec![Phase { mode: CompareMode::Mps, workers: 4 }]);
    }

    #[test]
    fn a_non_empty_run_directory_is_not_reused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x"), "1").unwrap();
        assert!(prepare_run_dir(dir.path(), false).unwrap_err().problem.contains("not empty"));
        prepare_run_dir(dir.path(), true).unwrap();
        assert!(dir.path().join("results").is_dir());
    }
}
