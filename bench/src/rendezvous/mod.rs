//! The start barrier: N workers (processes or Pods) meet over TCP and start measuring at one common instant.
//!
//! One server (the `compare` orchestrator, or worker 0 of a Kubernetes Job behind a headless Service) accepts
//! `READY <index> <host> workers=<N> [run=<run id>] [digest=<scenario digest>] [token=<secret>]` lines. When every index in 0..N
//! has arrived it answers each with `GO <unix-ns>`, a start instant a little in the future, so all workers begin
//! together however late each was scheduled. If some never arrive before the timeout, everyone gets
//! `ABORT <reason>` and the server's error names the missing workers. Workers keep retrying the connection until
//! the timeout, so the server may come up last.
//!
//! Only this run's workers are admitted: a READY whose worker count, run id, scenario digest or token differs
//! from the server's, or whose index is already held by a live connection, is answered `ABORT <reason>` and does
//! not take the index (a stale Pod of an earlier attempt, another experiment's Pod, a stranger who knows the run
//! id but not the run's token: `compare` makes one per group, `plan --kubernetes` one per Job, through a Secret).
//! No READY line can abort the run. An index is held only while its connection lives: a worker that sent READY
//! and went away frees its index, and the GO goes out only to live connections. Input is bounded: a line of at
//! most [`MAX_LINE`] bytes within [`IDENTIFY_TIMEOUT`], at most [`MAX_UNIDENTIFIED`] connections waiting to
//! identify themselves (a new one evicts the oldest silent one, so silent connections cannot keep a real
//! worker out: it sends READY the moment it connects); the server logs (at most [`MAX_LOGGED`]) refusals on
//! stderr, and keeps accepting through failed accepts (too many open files). A worker reads the reply within
//! the same line bound, and refuses a start instant more than [`MAX_START_AHEAD`] away.
//!
//! `protocol` holds the lines and who is admitted (pure), `server` the barrier a run's orchestrator serves,
//! `client` a worker's side.

mod client;
mod protocol;
mod server;

pub use client::{join, start_instant};
pub use protocol::{admit, digest, host_pattern, missing_workers, new_token, Admission, Message, RunIdentity};
pub use server::{bind, serve, serve_cancellable};

use std::time::Duration;

/// How far ahead of the last arrival the common start instant is placed.
pub const START_LEAD: Duration = Duration::from_millis(250);
/// The longest protocol line accepted, newline included.
pub const MAX_LINE: usize = 1024;
/// Connections that have not yet sent their READY line, at most.
pub const MAX_UNIDENTIFIED: usize = 64;
/// How long a connection may take to send its READY line (a worker sends it as soon as it connects).
pub const IDENTIFY_TIMEOUT: Duration = Duration::from_secs(3);
/// An ABORT reason that starting with this is transient: the worker tries again until its timeout.
pub const BUSY: &str = "busy:";
/// Refusals logged one by one; the rest are counted.
pub const MAX_LOGGED: usize = 20;
/// The furthest from now a GO's start instant may be (a real server's is [`START_LEAD`] ahead).
pub const MAX_START_AHEAD: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::tests::run;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_worker_that_said_ready_and_left_frees_its_index() {
        use std::io::Write;
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, run(2), Duration::from_secs(10)));
        // Worker 0's seat taken by a connection that says READY and closes at once.
        let ghost = Message::Ready { index: 0, host: "sharebench-0".into(), identity: Some(run(2)) };
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(ghost.render().as_bytes()).unwrap();
        drop(s);
        std::thread::sleep(Duration::from_millis(300));
        join_all(&addr, 2);
        let arrived = server.join().unwrap().unwrap();
        assert_eq!(arrived.len(), 2, "the run started with both real workers, not the ghost");
    }

    /// A fake server at a fresh address that answers every connection with `reply` (then holds it open).
    fn fake_server(reply: Vec<u8>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut line = [0u8; 256];
                let _ = s.read(&mut line);
                let _ = s.write_all(&reply);
                std::thread::sleep(Duration::from_secs(2));
            }
        });
        addr
    }

    #[test]
    fn a_worker_bounds_the_reply_it_reads_and_refuses_a_start_centuries_away() {
        let far = fake_server(b"GO 18446744073709551615\n".to_vec());
        let err = join(&far, 0, &run(1), Duration::from_secs(5)).unwrap_err();
        assert!(
            err.problem.contains("start instant") && err.problem.contains("not a sharebench barrier"),
            "{}",
            err.problem
        );
        let endless = fake_server(vec![b'x'; 3 << 20]);
        let err = join(&endless, 0, &run(1), Duration::from_secs(5)).unwrap_err();
        assert!(err.problem.contains(&format!("longer than {MAX_LINE} bytes")), "{}", err.problem);
        assert!(err.problem.len() < 300, "the reply is not copied into the error");
    }

    /// Workers 0..n of `run(n)` joining the barrier at `addr` together; their start instants.
    fn join_all(addr: &str, n: u32) -> Vec<u64> {
        let joins: Vec<_> = (0..n)
            .map(|i| {
                let addr = addr.to_string();
                std::thread::spawn(move || join(&addr, i, &run(n), Duration::from_secs(10)))
            })
            .collect();
        joins.into_iter().map(|j| j.join().unwrap().unwrap()).collect()
    }

    /// Sends `line` on a fresh connection to `addr` and returns the server's answer.
    fn send_raw(addr: &str, line: &[u8]) -> String {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.write_all(line);
        let mut answer = String::new();
        let _ = std::io::BufReader::new(s).read_line(&mut answer);
        answer
    }

    #[test]
    fn junk_and_strangers_are_refused_while_the_real_workers_start() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, run(2), Duration::from_secs(10)));
        let long = vec![b'x'; 4 * MAX_LINE];
        assert!(send_raw(&addr, &long).starts_with(&format!("ABORT line longer than {MAX_LINE} bytes")));
        assert!(send_raw(&addr, b"GET / HTTP/1.1\r\n").starts_with("ABORT expected READY"));
        let stale = Message::Ready { index: 0, host: "sharebench-0".into(), identity: Some(RunIdentity::new(2)) };
        assert!(send_raw(&addr, stale.render().as_bytes()).contains("no run id given"));
        let other = RunIdentity { run_id: Some("experiment-0".into()), ..run(2) };
        let foreign = Message::Ready { index: 1, host: "other-1".into(), identity: Some(other) };
        assert!(send_raw(&addr, foreign.render().as_bytes()).contains("run id experiment-0"));
        join_all(&addr, 2);
        assert_eq!(server.join().unwrap().unwrap().len(), 2, "neither index was taken by a stranger");
    }

    #[test]
    fn silent_connections_cannot_keep_a_real_worker_out() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, run(1), Duration::from_secs(20)));
        // 200 connections that never speak, more than the slots for them: the oldest are evicted.
        let silent: Vec<_> = (0..200).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(300));
        // The real worker gets in while they are all still connected, long before they would time out.
        let started = std::time::Instant::now();
        join(&addr, 0, &run(1), Duration::from_secs(15)).unwrap();
        assert!(started.elapsed() < IDENTIFY_TIMEOUT, "{:?}", started.elapsed());
        server.join().unwrap().unwrap();
        drop(silent);
    }

    #[test]
    fn all_workers_get_the_same_start() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, run(3), Duration::from_secs(10)));
        let starts = join_all(&addr, 3);
        assert!(starts.iter().all(|&s| s == starts[0]));
        assert_eq!(server.join().unwrap().unwrap().len(), 3);
    }

    /// Worker `index`'s READY, already in the barrier's socket before anyone serves it: its arrival is an event
    /// the server sees first, whatever the scheduler does with the test's threads.
    fn arrived_before_serving(addr: &str, index: u32, workers: u32) -> std::net::TcpStream {
        use std::io::Write;
        let ready = Message::Ready { index, host: format!("sharebench-{index}"), identity: Some(run(workers)) };
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(ready.render().as_bytes()).unwrap();
        s
    }

    /// The one line the server answers on `stream`.
    fn reply(stream: std::net::TcpStream) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(stream).read_line(&mut line).unwrap();
        line
    }

    #[test]
    fn a_missing_worker_is_named_and_the_others_are_released() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let worker_0 = arrived_before_serving(&addr, 0, 3);
        let err = serve(listener, run(3), Duration::from_millis(800)).unwrap_err();
        assert!(err.problem.contains("1 of 3 workers arrived"), "{}", err.problem);
        assert!(err.problem.contains("missing: 1-2"), "{}", err.problem);
        assert!(reply(worker_0).starts_with("ABORT"), "the worker that came is released");
    }

    #[test]
    fn cancelling_releases_the_waiting_workers_at_once() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let worker_0 = arrived_before_serving(&addr, 0, 2);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let started = std::time::Instant::now();
        let server = std::thread::spawn(move || serve_cancellable(listener, run(2), Duration::from_secs(30), flag));
        std::thread::sleep(Duration::from_millis(300));
        cancel.store(true, Ordering::SeqCst);
        assert!(server.join().unwrap().unwrap_err().problem.contains("cancelled after 1 of 2 workers arrived"));
        assert!(reply(worker_0).starts_with("ABORT"), "the waiting worker is released");
        // Long before the 30 s timeout: cancelling, not timing out, ended it.
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_server_that_never_comes_is_a_clear_error() {
        let err = join("127.0.0.1:1", 0, &run(1), Duration::from_millis(500)).unwrap_err();
        assert!(err.problem.contains("could not reach 127.0.0.1:1"));
    }
}
