//! The observer-effect baseline (`compare --exec --observer-effect`): a phase's commands run with no sharebench
//! worker beside them. This process starts every command itself, in the environment its worker would give it
//! (the same pipe directory, the same `SHAREBENCH_*` variables), with its protocol lines going to a plain file
//! instead of a worker's FIFO; it waits until every command has written `ready`, learns the window (its own,
//! or, in the shared-window design, the barrier's GO that the supervised Pods of the same window get, taking
//! the alone Pods' places at it), tells the commands, sleeps until the window's end without reading anything,
//! stops the commands (SIGTERM, SIGKILL after the grace) and only then reads their files. Nothing samples the GPU and nothing verifies membership, so the
//! results say `unverified`: they exist to be set beside the supervised phase's (`analysis::observer`).
//!
//! Request lines must carry `start_ns`: a file gives no arrival times, and without a start a request's place
//! in the window cannot be told.

use crate::error::{Error, Result};
use crate::fsio::{self, Overwrite};
use crate::lifecycle::command::{self, Identity};
use crate::orchestrate::BarrierSeat;
use crate::result::tenant::TenantReport;
use crate::result::{RunConfig, RunStatus, WorkerResult};
use crate::tenant::protocol::{self, env, Message};
use crate::tenant::session::{describe_ending, requests_lane};
use crate::tenant::supervise::{terminate_group, Ending, Reported};
use crate::tenant::window::Window;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How far ahead of the last `ready` the common window starts.
const LEAD: Duration = Duration::from_millis(200);

/// One command of the phase: its Pod index and label, its environment as its worker would set it, and what to
/// unset.
pub struct AloneTenant {
    pub index: u32,
    pub label: String,
    pub env: Vec<(String, std::ffi::OsString)>,
    pub unset: Vec<String>,
}

/// The phase's commands and how to run them.
pub struct AlonePhase<'a> {
    pub command: &'a [String],
    /// The Pods of the window (alone and, in a shared window, supervised).
    pub workers: u32,
    pub tenants: Vec<AloneTenant>,
    pub mode: &'a str,
    pub run_id: String,
    pub workload: &'a crate::cli::WorkloadArgs,
    pub window: Duration,
    pub ready_timeout: Duration,
    pub stop_grace: Duration,
    /// Where the protocol files, start files and logs go.
    pub scratch: PathBuf,
    pub logs: PathBuf,
    pub repeat: u32,
}

impl AlonePhase<'_> {
    /// The Pods of the window that run alone: all of them, unless the window is shared.
    pub fn alone_indices(&self) -> Vec<u32> {
        match self.tenants.len() as u32 == self.workers {
            true => vec![],
            false => self.tenants.iter().map(|t| t.index).collect(),
        }
    }
}

struct Running {
    child: Child,
    report: PathBuf,
    start_file: PathBuf,
    exited: Option<std::process::ExitStatus>,
}

/// Where the window's start comes from.
pub enum Start<'a> {
    /// The phase's own: [`LEAD`] after the last command is ready.
    Own,
    /// The barrier of the supervised Pods of the same window, joined in the alone Pods' places.
    Shared(&'a BarrierSeat),
}

/// Runs the phase and returns each command's result (GPU identity and host left blank for the caller).
pub fn run(phase: &AlonePhase, start_from: Start) -> Result<Vec<WorkerResult>> {
    let made = std::fs::create_dir_all(&phase.scratch)
        .map_err(|e| Error::io("create directory", &phase.scratch, e))
        .and_then(|_| std::fs::create_dir_all(&phase.logs).map_err(|e| Error::io("create directory", &phase.logs, e)));
    let launched = Instant::now();
    let mut running = Vec::new();
    let started = made.and_then(|_| {
        phase.tenants.iter().try_for_each(|tenant| {
            running.push(start(phase, tenant, tenant.index)?);
            Ok(())
        })
    });
    let ready = started.is_ok() && wait_ready(&mut running, phase.ready_timeout);
    let shared_start = match (&start_from, ready) {
        (Start::Shared(seat), true) => Some(join_barrier(seat, phase)),
        (Start::Shared(seat), false) => {
            // The supervised Pods must not wait the barrier's timeout for Pods that will never come.
            seat.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            None
        }
        (Start::Own, _) => None,
    };
    if let Err(e) = started {
        running.iter_mut().for_each(|r| drop(stop(r, phase.stop_grace)));
        return Err(e);
    }
    let mut problem = (!ready).then(|| "not every command of the phase wrote ready: nothing was measured".to_string());
    let start_unix_ns = match shared_start {
        Some(Ok(at)) => at,
        Some(Err(e)) => {
            problem = Some(format!("the window's barrier failed: {}", e.problem));
            0
        }
        None => crate::host::unix_now_ns() + LEAD.as_nanos() as u64,
    };
    let ready = problem.is_none();
    let window = Window { start_unix_ns, end_unix_ns: start_unix_ns + phase.window.as_nanos() as u64 };
    if ready {
        let text = format!("{} {}\n", window.start_unix_ns, window.end_unix_ns);
        for r in &running {
            fsio::write_atomic(&r.start_file, text.as_bytes(), Overwrite::Allow)?;
        }
        // Nothing is read while the commands are measured: one sleep to the window's end.
        let now = crate::host::unix_now_ns();
        if !crate::orchestrate::interrupted() {
            std::thread::sleep(Duration::from_nanos(window.end_unix_ns.saturating_sub(now)));
        }
    }
    let endings: Vec<(String, Option<String>)> = running.iter_mut().map(|r| stop(r, phase.stop_grace)).collect();
    let ran_s = launched.elapsed().as_secs_f64();
    running
        .iter()
        .zip(&phase.tenants)
        .zip(endings)
        .map(|((r, tenant), ending)| {
            let window = problem.is_none().then_some(window);
            result(phase, tenant.index, r, ending, window.ok_or(problem.as_deref().unwrap_or_default()), ran_s)
        })
        .collect()
}

/// Takes every alone Pod's place at the shared barrier (one connection each, as its worker would) and returns
/// the GO's start instant.
fn join_barrier(seat: &BarrierSeat, phase: &AlonePhase) -> Result<u64> {
    let joined: Vec<Result<u64>> = std::thread::scope(|scope| {
        let joins: Vec<_> = phase
            .tenants
            .iter()
            .map(|t| scope.spawn(move || crate::rendezvous::join(&seat.addr, t.index, &seat.identity, seat.timeout)))
            .collect();
        joins.into_iter().map(|j| j.join().unwrap_or_else(|_| Err(Error::new("a barrier join panicked")))).collect()
    });
    let mut starts = Vec::new();
    for j in joined {
        starts.push(j?);
    }
    starts.into_iter().max().ok_or_else(|| Error::new("no alone Pod to join the barrier"))
}

fn start(phase: &AlonePhase, tenant: &AloneTenant, index: u32) -> Result<Running> {
    let report = phase.scratch.join(format!("{}.protocol", tenant.label));
    let start_file = phase.scratch.join(format!("{}.start", tenant.label));
    let _ = std::fs::remove_file(&start_file);
    std::fs::File::create(&report).map_err(|e| Error::io("create", &report, e))?;
    let log_path = phase.logs.join(format!("{}.log", tenant.label));
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("create", &log_path, e))?;
    let who = Identity { index, workers: phase.workers, run_id: &phase.run_id, mode: phase.mode, group: None };
    let program = phase.command.first().ok_or_else(|| Error::flag("--exec", "needs a command after `--`"))?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(&phase.command[1..])
        .envs(command::command_env(who, phase.window, phase.workload))
        .envs(tenant.env.iter().map(|(k, v)| (k, v)))
        .env(env::REPORT, &report)
        .env(env::START_FILE, &start_file)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| Error::io("open", &log_path, e))?)
        .stderr(log)
        .process_group(0);
    for name in &tenant.unset {
        cmd.env_remove(name);
    }
    let child = cmd.spawn().map_err(|e| Error::new(format!("cannot start `{}`: {e}", phase.command.join(" "))))?;
    Ok(Running { child, report, start_file, exited: None })
}

/// Whether a protocol file holds `ready` yet.
fn says_ready(path: &Path) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().any(|l| matches!(protocol::parse_line(l), Ok(Some(Message::Ready))))
}

/// Waits until every command has written `ready` (false: one exited first, or the timeout passed).
fn wait_ready(running: &mut [Running], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if running.iter().all(|r| says_ready(&r.report)) {
            return true;
        }
        for r in running.iter_mut() {
            r.exited = r.exited.or_else(|| r.child.try_wait().ok().flatten());
        }
        if running.iter().any(|r| r.exited.is_some()) || Instant::now() >= deadline || crate::orchestrate::interrupted()
        {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops a command (SIGTERM to its group, SIGKILL after `grace`); returns its ending and exit status.
fn stop(r: &mut Running, grace: Duration) -> (String, Option<String>) {
    let pid = r.child.id();
    let ending = match r.exited.or_else(|| r.child.try_wait().ok().flatten()) {
        Some(status) => Ending::Exited(status),
        None => terminate_group(pid, grace, |wait| {
            std::thread::sleep(wait);
            r.child.try_wait().ok().flatten()
        }),
    };
    if ending == Ending::Killed {
        let _ = r.child.wait();
    }
    // Whatever the command left behind in its group goes too.
    let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
    let (how, status) = describe_ending(ending);
    (how.to_string(), status)
}

/// What a protocol file says, each request placed by its own `start_ns` (a file has no arrival times).
pub fn read_protocol(text: &str) -> Reported {
    let mut reported = Reported::default();
    for (i, line) in text.lines().enumerate() {
        let number = i as u64 + 1;
        let parsed = match protocol::parse_line(line) {
            Ok(Some(Message::Request(r))) if r.start_unix_ns.is_none() => Err(protocol::ProtocolError {
                line: line.chars().take(80).collect(),
                why: "has no start_ns: the observer-effect baseline reads a file after the run, so a request needs \
                      its own start time"
                    .into(),
            }),
            other => other,
        };
        let at = match &parsed {
            Ok(Some(Message::Request(r))) => r.start_unix_ns.unwrap_or(0).saturating_add(r.latency_ns),
            _ => 0,
        };
        reported.take((number, at, parsed));
    }
    reported
}

/// One command's result: its requests in `window`, or (`Err`) why nothing was measured.
fn result(
    phase: &AlonePhase,
    index: u32,
    r: &Running,
    (ending, exit_status): (String, Option<String>),
    window: std::result::Result<Window, &str>,
    ran_s: f64,
) -> Result<WorkerResult> {
    let text = std::fs::read_to_string(&r.report).map_err(|e| Error::io("read", &r.report, e))?;
    let reported = read_protocol(&text);
    let mut report = TenantReport::new(true);
    (report.ending, report.exit_status, report.ran_s) = (ending, exit_status, ran_s);
    let mut problems = Vec::new();
    if let Err(why) = window {
        report.ending = "never-ready".into();
        problems.push(why.to_string());
    }
    let cut = window.unwrap_or(Window { start_unix_ns: 0, end_unix_ns: 0 });
    let lane = requests_lane(&reported, &mut report, index, cut)?;
    if report.protocol_errors > 0 {
        problems.push(format!(
            "{} protocol line(s) not understood (first: {})",
            report.protocol_errors,
            report.protocol_error_lines.first().map(String::as_str).unwrap_or("?")
        ));
    }
    let config = RunConfig {
        shape: None,
        command: Some(phase.command.to_vec()),
        kernels: None,
        duration_s: Some(phase.window.as_secs_f64()),
        warmup: 0,
        arrivals: crate::arrivals::Arrivals::Closed,
        workers: phase.workers,
        worker_index: index,
        streams: 1,
        barrier: false,
        mps_active_thread_percentage: None,
        repeat: phase.repeat,
        sync: None,
        alone_indices: phase.alone_indices(),
        command_line: std::env::args().collect(),
    };
    let mut result = crate::lifecycle::blank_result(phase.run_id.clone(), phase.mode, None, config);
    result.status = RunStatus {
        complete: problems.is_empty(),
        error: (!problems.is_empty()).then(|| problems.join("; ")),
        terminated: None,
    };
    (result.started_unix_ns, result.finished_unix_ns) = (cut.start_unix_ns, cut.end_unix_ns);
    result.lanes = vec![lane];
    result.tenant = Some(report);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A tenant in sh: ready, then a request every 10 ms from the window's start until SIGTERM.
    const FAKE: &str = r#"echo ready >> "$SHAREBENCH_REPORT"
while [ ! -f "$SHAREBENCH_START_FILE" ]; do sleep 0.01; done
read s e < "$SHAREBENCH_START_FILE"
while true; do now=$(date +%s%N); [ "$now" -ge "$s" ] && echo "request latency_ms=1 start_ns=$now" >> "$SHAREBENCH_REPORT"; sleep 0.01; done"#;

    fn workload() -> crate::cli::WorkloadArgs {
        match crate::cli::Cli::try_parse_from(["sharebench", "run"]).unwrap().command {
            crate::cli::Command::Run(a) => a.workload,
            _ => unreachable!(),
        }
    }

    fn phase<'a>(
        command: &'a [String],
        workload: &'a crate::cli::WorkloadArgs,
        workers: u32,
        indices: &[u32],
        dir: &Path,
    ) -> AlonePhase<'a> {
        let tenant =
            |i: u32| AloneTenant { index: i, label: format!("w{workers}-mps-{i}-r1"), env: vec![], unset: vec![] };
        AlonePhase {
            command,
            workers,
            tenants: indices.iter().map(|&i| tenant(i)).collect(),
            mode: "mps",
            run_id: "compare-1-alone".into(),
            workload,
            window: Duration::from_millis(500),
            ready_timeout: Duration::from_secs(20),
            stop_grace: Duration::from_secs(5),
            scratch: dir.join("scratch"),
            logs: dir.join("logs"),
            repeat: 1,
        }
    }

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands_alone_share_one_window_and_their_files_become_results() {
        let dir = tempfile::tempdir().unwrap();
        let (command, workload) = (sh(FAKE), workload());
        let phase = phase(&command, &workload, 2, &[0, 1], dir.path());
        let results = run(&phase, Start::Own).unwrap();
        assert_eq!(results.len(), 2);
        for (i, r) in results.iter().enumerate() {
            assert!(r.status.complete, "{:?}", r.status);
            let report = r.tenant.as_ref().unwrap();
            assert_eq!(report.ending, "terminated", "stopped by SIGTERM at the window's end");
            assert!(report.requests_in_window >= 1, "{report:?}");
            assert_eq!((r.config.worker_index, r.config.workers, r.config.repeat), (i as u32, 2, 1));
            assert_eq!(r.finished_unix_ns - r.started_unix_ns, 500_000_000);
        }
        assert_eq!(results[0].started_unix_ns, results[1].started_unix_ns, "one common window");
        assert!(results.iter().all(|r| r.config.alone_indices.is_empty()), "the whole phase ran alone");
    }

    #[test]
    fn a_streaming_tenants_first_token_and_per_token_times_reach_its_result_and_a_report() {
        // Each request: 20 ms, first token after 5 ms, 16 tokens; every fourth line has a TTFT above its latency.
        let script = r#"echo ready >> "$SHAREBENCH_REPORT"
while [ ! -f "$SHAREBENCH_START_FILE" ]; do sleep 0.01; done
read s e < "$SHAREBENCH_START_FILE"
i=0
while true; do now=$(date +%s%N); if [ "$now" -ge "$s" ]; then i=$((i+1))
  if [ $((i % 4)) -eq 0 ]; then echo "request latency_ms=20 ttft_ms=25 tokens=16 start_ns=$now" >> "$SHAREBENCH_REPORT"
  else echo "request latency_ms=20 ttft_ms=5 tokens=16 prompt_tokens=64 start_ns=$now" >> "$SHAREBENCH_REPORT"; fi
fi; sleep 0.01; done"#;
        let dir = tempfile::tempdir().unwrap();
        let (command, workload) = (sh(script), workload());
        let results = run(&phase(&command, &workload, 1, &[0], dir.path()), Start::Own).unwrap();
        let t = results[0].tenant.as_ref().unwrap();
        assert!(t.protocol_errors >= 1 && t.protocol_error_lines[0].contains("ttft_ms is above latency_ms"), "{t:?}");
        assert!(t.ttft_histogram.is_some() && t.tpot_histogram.is_some());
        assert_eq!(t.tokens, Some(16 * t.requests_in_window));
        // Read back as a report reads it: exact TTFT and TPOT, (20 - 5) / 15 = 1 ms a token.
        let path = dir.path().join("r.json");
        std::fs::write(&path, results[0].to_json_line()).unwrap();
        let loaded = crate::load::load(&[path.display().to_string()], true).unwrap();
        let g = &crate::analysis::analyze(&loaded.workers).groups[0];
        let (ttft, tpot) = (g.ttft.unwrap(), g.tpot.unwrap());
        assert_eq!(ttft.samples, t.requests_in_window);
        assert!(
            (ttft.p99_ns as f64 - 5e6).abs() < 0.01e6 && (tpot.p50_ns as f64 - 1e6).abs() < 0.01e6,
            "{ttft:?} {tpot:?}"
        );
    }

    /// A barrier of `workers` places, one of them (index 0) taken by a stand-in for a supervised worker.
    fn shared_barrier(workers: u32) -> (BarrierSeat, std::thread::JoinHandle<Result<u64>>) {
        let listener = crate::rendezvous::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let identity = crate::rendezvous::RunIdentity::new(workers);
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let timeout = Duration::from_secs(20);
        let (id, c) = (identity.clone(), cancel.clone());
        std::thread::spawn(move || crate::rendezvous::serve_cancellable(listener, id, timeout, c));
        let (a, id) = (addr.clone(), identity.clone());
        let supervised = std::thread::spawn(move || crate::rendezvous::join(&a, 0, &id, timeout));
        (BarrierSeat { addr, identity, timeout, cancel }, supervised)
    }

    #[test]
    fn in_a_shared_window_the_alone_pods_take_their_places_at_the_supervised_pods_barrier() {
        let dir = tempfile::tempdir().unwrap();
        let (command, workload) = (sh(FAKE), workload());
        let (seat, supervised) = shared_barrier(3);
        let results = run(&phase(&command, &workload, 3, &[1, 2], dir.path()), Start::Shared(&seat)).unwrap();
        let go = supervised.join().unwrap().unwrap();
        for (r, index) in results.iter().zip([1, 2]) {
            assert!(r.status.complete, "{:?}", r.status);
            assert_eq!(r.started_unix_ns, go, "the window the supervised Pod was given");
            assert_eq!((r.config.worker_index, r.config.workers), (index, 3));
            assert_eq!(r.config.alone_indices, [1, 2]);
            assert!(r.tenant.as_ref().unwrap().requests_in_window >= 1);
        }
    }

    #[test]
    fn alone_pods_that_never_get_ready_release_the_supervised_pods_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (command, workload) = (sh("exit 3"), workload());
        let (seat, supervised) = shared_barrier(2);
        let began = std::time::Instant::now();
        let results = run(&phase(&command, &workload, 2, &[1], dir.path()), Start::Shared(&seat)).unwrap();
        let err = supervised.join().unwrap().unwrap_err();
        assert!(began.elapsed() < Duration::from_secs(10), "released long before the barrier's 20 s timeout");
        assert!(err.problem.contains("aborted"), "{}", err.problem);
        assert!(!results[0].status.complete);
        assert!(
            results[0].status.error.as_deref().unwrap().contains("nothing was measured"),
            "{:?}",
            results[0].status
        );
    }

    #[test]
    fn a_protocol_file_places_requests_by_their_own_start_and_refuses_those_without_one() {
        let text =
            "ready\nrequest latency_ms=2 start_ns=1000000000\nrequest latency_ms=3\n# note\nrequest latency_ms=x\n";
        let r = read_protocol(text);
        assert_eq!(r.ready_at_unix_ns, Some(0));
        assert_eq!(r.requests.len(), 1);
        assert_eq!(r.requests[0].span(), (1_000_000_000, 1_002_000_000));
        assert_eq!(r.error_count, 2);
        assert_eq!(r.errors[0].line, 3);
        assert!(r.errors[0].error.to_string().contains("no start_ns"), "{}", r.errors[0].error);
    }
}
