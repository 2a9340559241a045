//! A command as a workload, with scripted fake tenants (shell, no GPU): the protocol, the common window, and
//! every way a command can misbehave (dies, never gets ready, ignores SIGTERM, writes garbage). Nothing a
//! command reported may be lost, and every failure must be named.

use sharebench::tenant::session::{Finished, Session, Settings};
use sharebench::tenant::window::Window;
use std::time::Duration;

const MS: u64 = 1_000_000;

/// A tenant that reports ready, waits for the window, and reports 5 ms requests placed by their `start_ns` from
/// the window it was told: one starting just before it, [`IN_WINDOW`] inside it (10 ms apart from its start), one
/// ending just after it; then it serves until stopped. Deterministic: what counts follows from the protocol alone,
/// not from how fast this machine runs the script.
const GOOD: &str = r##"
echo "# loading the model" > "$SHAREBENCH_REPORT"
sleep 0.1
echo ready > "$SHAREBENCH_REPORT"
while [ ! -f "$SHAREBENCH_START_FILE" ]; do sleep 0.01; done
read s e < "$SHAREBENCH_START_FILE"
echo "request latency_ms=5 start_ns=$((s - 1000000)) items=2" > "$SHAREBENCH_REPORT"
i=0
while [ $i -lt 10 ]; do
  echo "request latency_ms=5 start_ns=$((s + i * 10000000)) items=2" > "$SHAREBENCH_REPORT"
  i=$((i + 1))
done
echo "request latency_ms=5 start_ns=$((e - 1000000)) items=2" > "$SHAREBENCH_REPORT"
while true; do sleep 0.05; done
"##;

/// Requests of [`GOOD`] inside the window.
const IN_WINDOW: u64 = 10;

fn settings(window_ms: u64) -> Settings {
    Settings {
        ready_timeout: Duration::from_secs(10),
        stop_grace: Duration::from_millis(500),
        reports: true,
        window: Duration::from_millis(window_ms),
    }
}

fn session(script: &str, settings: Settings, scratch: &std::path::Path) -> Session {
    let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
    let env = vec![("SHAREBENCH_WORKER_INDEX".to_string(), "0".to_string())];
    Session::start(&command, &env, settings, scratch).unwrap()
}

fn window_from_now(lead_ms: u64, length_ms: u64) -> Window {
    let start_unix_ns = sharebench::host::unix_now_ns() + lead_ms * MS;
    Window { start_unix_ns, end_unix_ns: start_unix_ns + length_ms * MS }
}

/// Starts `script`, waits for ready, measures a `ms` window starting now, and finishes.
fn measure(script: &str, s: Settings) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let mut session = session(script, s, dir.path());
    assert!(session.until_ready(), "{script}: never ready");
    session.measure(window_from_now(50, s.window.as_millis() as u64)).unwrap();
    session.finish(3).unwrap()
}

#[test]
fn a_good_tenant_is_measured_only_inside_the_window() {
    let f = measure(GOOD, settings(600));
    assert!(f.problems.is_empty(), "{:?}", f.problems);
    let r = &f.report;
    assert!(r.ready_after_s.unwrap() >= 0.1, "it slept 0.1 s before ready: {:?}", r.ready_after_s);
    assert_eq!(r.ending, "terminated");
    assert_eq!((r.requests_before_window, r.requests_in_window, r.requests_after_window), (1, IN_WINDOW, 1));
    assert_eq!(f.lane.kernels, r.requests_in_window);
    assert_eq!(r.items, Some(2 * r.requests_in_window));
    assert!(!f.lane.device_stamps && f.lane.worker == 3);
    let records = sharebench::result::records::decode(&f.lane.records).unwrap();
    let window_ns = 600 * MS;
    assert!(records.iter().all(|rec| rec.submit_ns + rec.latency_ns <= window_ns && rec.device_start_ns == 0));
    let h = sharebench::result::histogram::from_base64(&f.lane.latency_histogram).unwrap();
    assert_eq!(h.len(), r.requests_in_window);
    assert_eq!(h.value_at_quantile(0.5) / MS, 5, "p50 {}", h.value_at_quantile(0.5));
}

#[test]
fn every_tenant_of_a_run_gets_the_same_window() {
    let dir = tempfile::tempdir().unwrap();
    let ready = std::sync::Arc::new(std::sync::Barrier::new(2));
    let window = std::sync::Arc::new(std::sync::Mutex::new(None));
    let handles: Vec<_> = [0.05, 0.6]
        .into_iter()
        .map(|delay| {
            let (ready, window, scratch) = (ready.clone(), window.clone(), dir.path().join(delay.to_string()));
            std::thread::spawn(move || {
                std::fs::create_dir_all(&scratch).unwrap();
                let script = GOOD.replace("sleep 0.1", &format!("sleep {delay}"));
                let mut s = session(&script, settings(400), &scratch);
                assert!(s.until_ready());
                // The barrier: the window starts when the slower tenant is ready, the same for both.
                if ready.wait().is_leader() {
                    *window.lock().unwrap() = Some(window_from_now(50, 400));
                }
                ready.wait();
                let w = window.lock().unwrap().unwrap();
                s.measure(w).unwrap();
                (w, s.finish(0).unwrap())
            })
        })
        .collect();
    let done: Vec<(Window, Finished)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(done[0].0, done[1].0);
    for (_, f) in &done {
        assert!(f.problems.is_empty(), "{:?}", f.problems);
        assert_eq!(f.report.requests_in_window, IN_WINDOW);
        assert_eq!(f.lane.records.host_base_unix_ns, done[0].0.start_unix_ns);
    }
    // The slow tenant slept 0.6 s before ready, and the window was only announced once both were ready.
    assert!(done[1].1.report.ready_after_s.unwrap() >= 0.6);
}

#[test]
fn a_tenant_that_dies_in_the_window_is_reported_with_its_status_and_keeps_its_requests() {
    let script = GOOD.replace("while true; do sleep 0.05; done", "exit 3");
    let f = measure(&script, settings(3000));
    assert_eq!(f.report.ending, "exited");
    assert_eq!(f.report.exit_status.as_deref(), Some("exit status 3"));
    assert_eq!((f.report.requests_before_window, f.report.requests_in_window), (1, IN_WINDOW));
    assert_eq!(f.problems.len(), 1);
    assert!(f.problems[0].contains("the command ended (exit status 3)") && f.problems[0].contains("3.0 s window"));
}

#[test]
fn a_tenant_that_never_gets_ready_is_stopped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let s = Settings { ready_timeout: Duration::from_millis(300), ..settings(100) };
    let mut session = session("echo '# still loading' > \"$SHAREBENCH_REPORT\"; sleep 30", s, dir.path());
    assert!(!session.until_ready());
    let f = session.finish(0).unwrap();
    assert_eq!(f.report.ending, "never-ready");
    // Stopped by SIGTERM, not waited for: the 30 s sleep never ended by itself.
    assert_eq!(f.report.exit_status.as_deref(), Some("killed by signal 15 (SIGTERM)"));
    assert!(f.problems[0].contains("never reported ready within --ready-timeout 0 s"), "{:?}", f.problems);
    assert_eq!(f.lane.kernels, 0);
}

#[test]
fn a_tenant_that_exits_before_ready_is_named_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = session("echo 'loading failed' >&2; exit 7", settings(100), dir.path());
    assert!(!session.until_ready());
    let f = session.finish(0).unwrap();
    assert_eq!(
        (f.report.ending.as_str(), f.report.exit_status.as_deref()),
        ("exited-before-ready", Some("exit status 7"))
    );
    assert!(f.problems[0].contains("before it reported ready"));
}

#[test]
fn a_tenant_that_ignores_sigterm_is_killed_after_the_grace_period_and_its_requests_are_kept() {
    let script = format!("trap '' TERM\n{GOOD}");
    let f = measure(&script, settings(400));
    // Killed after the grace period, never waited for: it serves forever otherwise.
    assert_eq!(f.report.ending, "killed");
    assert!(f.report.exit_status.as_deref().unwrap().contains("SIGKILL"));
    assert_eq!(f.report.requests_in_window, IN_WINDOW);
    assert!(f.problems.is_empty(), "{:?}", f.problems);
}

#[test]
fn garbage_lines_are_named_and_every_valid_line_is_kept() {
    let script = GOOD.replace(
        "i=0\n",
        "echo hello > \"$SHAREBENCH_REPORT\"; echo 'request latency_ms=abc' > \"$SHAREBENCH_REPORT\"\ni=0\n",
    );
    let f = measure(&script, settings(500));
    assert_eq!(f.report.protocol_errors, 2);
    assert!(
        f.report.protocol_error_lines[0].contains("\"hello\": unknown message"),
        "{:?}",
        f.report.protocol_error_lines
    );
    assert!(f.report.protocol_error_lines[1].contains("is not a number"));
    assert_eq!(f.report.requests_in_window, IN_WINDOW);
    assert!(f.problems[0].contains("2 protocol line(s) of the command were not understood"));
}

#[test]
fn a_silent_neighbour_is_ready_at_once_and_reported_with_its_run_time_and_status() {
    let s = Settings { reports: false, ..settings(300) };
    let f = measure("sleep 30", s);
    assert_eq!(f.report.ending, "terminated");
    assert!(!f.report.reports && f.report.neighbour_only() && f.report.ran_s >= 0.3);
    assert!(f.problems.is_empty());
}

#[test]
fn a_missing_program_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let command = vec!["/nonexistent/serve".to_string()];
    let err = Session::start(&command, &[], settings(100), dir.path()).err().unwrap();
    assert!(err.problem.contains("cannot start the command `/nonexistent/serve`"), "{}", err.problem);
    assert!(err.fix.unwrap().contains("exists in this image"));
}
