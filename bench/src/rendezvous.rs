//! The start barrier: N workers (processes or Pods) meet over TCP and start measuring at one common instant.
//!
//! One server (the `compare` orchestrator, or worker 0 of a Kubernetes Job behind a headless Service) accepts
//! `READY <index> <host>` lines. When every index in 0..N has arrived it answers each with `GO <unix-ns>`, a
//! start instant a little in the future, so all workers begin together however late each was scheduled. If some
//! never arrive before the timeout, everyone gets `ABORT <reason>` and the server's error names the missing
//! workers. Workers keep retrying the connection until the timeout, so the server may come up last.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How far ahead of the last arrival the common start instant is placed.
pub const START_LEAD: Duration = Duration::from_millis(250);

/// A protocol line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Ready { index: u32, host: String },
    Go { start_unix_ns: u64 },
    Abort { reason: String },
}

impl Message {
    pub fn parse(line: &str) -> Option<Message> {
        let mut words = line.trim_end().splitn(3, ' ');
        match (words.next()?, words.next(), words.next()) {
            ("READY", Some(index), host) => {
                Some(Message::Ready { index: index.parse().ok()?, host: host.unwrap_or("").to_string() })
            }
            ("GO", Some(ns), None) => Some(Message::Go { start_unix_ns: ns.parse().ok()? }),
            ("ABORT", reason, rest) => {
                Some(Message::Abort { reason: [reason.unwrap_or(""), rest.unwrap_or("")].join(" ").trim().to_string() })
            }
            _ => None,
        }
    }

    pub fn render(&self) -> String {
        match self {
            Message::Ready { index, host } => format!("READY {index} {host}\n"),
            Message::Go { start_unix_ns } => format!("GO {start_unix_ns}\n"),
            Message::Abort { reason } => format!("ABORT {reason}\n"),
        }
    }
}

/// Lists the indices of 0..n not in `arrived`, compactly (`2, 5-7`).
pub fn missing_workers(n: u32, arrived: impl IntoIterator<Item = u32>) -> String {
    let arrived: std::collections::BTreeSet<u32> = arrived.into_iter().collect();
    let missing: Vec<u32> = (0..n).filter(|i| !arrived.contains(i)).collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < missing.len() {
        let mut j = i;
        while j + 1 < missing.len() && missing[j + 1] == missing[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { missing[i].to_string() } else { format!("{}-{}", missing[i], missing[j]) });
        i = j + 1;
    }
    parts.join(", ")
}

/// If the arrived workers' hosts are named `<prefix><index>` (an Indexed Job's pod hostnames), the host name a
/// missing index would have, else `None`.
pub fn host_pattern(hosts: &BTreeMap<u32, String>) -> Option<String> {
    let mut prefix = None;
    for (index, host) in hosts {
        let p = host.strip_suffix(&index.to_string())?;
        if prefix.get_or_insert(p) != &p {
            return None;
        }
    }
    prefix.map(str::to_string)
}

/// `2-3 (pods sharebench-2, sharebench-3)` when the pod names can be told, else the indices.
fn describe_missing<T>(workers: u32, arrived: &BTreeMap<u32, (String, T)>) -> String {
    let indices = missing_workers(workers, arrived.keys().copied());
    let hosts: BTreeMap<u32, String> = arrived.iter().map(|(i, (h, _))| (*i, h.clone())).collect();
    match host_pattern(&hosts) {
        Some(prefix) if !hosts.is_empty() => {
            let names: Vec<String> =
                (0..workers).filter(|i| !hosts.contains_key(i)).map(|i| format!("{prefix}{i}")).collect();
            format!("{indices} (pods {})", names.join(", "))
        }
        _ => indices,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(format!("cannot start the barrier's I/O runtime: {e}")))
}

/// Binds the barrier's listening socket (so the port is known before workers start).
pub fn bind(addr: &str) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::flag("--barrier-listen", format!("cannot listen on {addr}: {e}")).fix("choose a free port or address")
    })?;
    listener.set_nonblocking(true).map_err(|e| Error::new(format!("barrier socket: {e}")))?;
    Ok(listener)
}

/// Serves one barrier for `workers` workers; returns the hosts that arrived, by index.
pub fn serve(listener: std::net::TcpListener, workers: u32, timeout: Duration) -> Result<BTreeMap<u32, String>> {
    serve_cancellable(listener, workers, timeout, Arc::new(AtomicBool::new(false)))
}

/// Like [`serve`], but gives up early (releasing everyone with ABORT) once `cancel` is set, e.g. when the parent
/// sees a worker exit before arriving.
pub fn serve_cancellable(
    listener: std::net::TcpListener,
    workers: u32,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
) -> Result<BTreeMap<u32, String>> {
    runtime()?.block_on(serve_async(listener, workers, timeout, cancel))
}

async fn serve_async(
    listener: std::net::TcpListener,
    workers: u32,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
) -> Result<BTreeMap<u32, String>> {
    let listener = TcpListener::from_std(listener).map_err(|e| Error::new(format!("barrier socket: {e}")))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Option<Message>, TcpStream)>(64);
    let accept = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line)).await;
                let msg = matches!(read, Ok(Ok(n)) if n > 0).then(|| Message::parse(&line)).flatten();
                let _ = tx.send((msg, reader.into_inner())).await;
            });
        }
    });
    let deadline = tokio::time::Instant::now() + timeout;
    let mut arrived: BTreeMap<u32, (String, TcpStream)> = BTreeMap::new();
    let mut failure = None;
    while (arrived.len() as u32) < workers {
        if cancel.load(Ordering::SeqCst) {
            let missing = describe_missing(workers, &arrived);
            failure = Some(Error::new(format!(
                "barrier: cancelled after {} of {workers} workers arrived (a worker exited first); missing: {missing}",
                arrived.len()
            )));
            break;
        }
        let slice = (tokio::time::Instant::now() + Duration::from_millis(100)).min(deadline);
        let received = match tokio::time::timeout_at(slice, rx.recv()).await {
            Err(_) if tokio::time::Instant::now() < deadline => continue,
            other => other,
        };
        match received {
            Ok(Some((Some(Message::Ready { index, host }), mut stream))) => {
                if index >= workers {
                    let reason = format!("worker index {index} out of range 0..{workers}");
                    let _ = stream.write_all(Message::Abort { reason }.render().as_bytes()).await;
                    continue;
                }
                match arrived.entry(index) {
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        slot.insert((host, stream));
                    }
                    std::collections::btree_map::Entry::Occupied(_) => {
                        let reason = format!("worker index {index} arrived twice (from {host})");
                        let _ = stream.write_all(Message::Abort { reason: reason.clone() }.render().as_bytes()).await;
                        failure = Some(
                            Error::new(format!("barrier: {reason}")).fix("give every worker a distinct --worker-index"),
                        );
                        break;
                    }
                }
            }
            Ok(Some((_, mut stream))) => {
                let _ = stream
                    .write_all(Message::Abort { reason: "expected READY <index> <host>".into() }.render().as_bytes())
                    .await;
            }
            Ok(None) | Err(_) => {
                let missing = describe_missing(workers, &arrived);
                failure = Some(
                    Error::new(format!("barrier: {} of {workers} workers arrived within {:?}; missing: {missing}", arrived.len(), timeout))
                        .fix("check that the missing workers started (kubectl get pods / their logs) and can reach the barrier address; raise --barrier-timeout if they start slowly"),
                );
                break;
            }
        }
    }
    accept.abort();
    let reply = match &failure {
        None => Message::Go { start_unix_ns: crate::host::unix_now_ns() + START_LEAD.as_nanos() as u64 },
        Some(e) => Message::Abort { reason: e.problem.clone() },
    };
    for (_, stream) in arrived.values_mut() {
        let _ = stream.write_all(reply.render().as_bytes()).await;
        let _ = stream.flush().await;
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(arrived.into_iter().map(|(i, (host, _))| (i, host)).collect()),
    }
}

/// Joins the barrier at `addr` as worker `index`; returns the common start instant (Unix ns).
pub fn join(addr: &str, index: u32, timeout: Duration) -> Result<u64> {
    runtime()?.block_on(join_async(addr, index, timeout))
}

async fn join_async(addr: &str, index: u32, timeout: Duration) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = String::from("no attempt made");
    let stream = loop {
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => break stream,
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => {}
        }
        if tokio::time::Instant::now() + Duration::from_millis(200) >= deadline {
            return Err(Error::new(format!("barrier: could not reach {addr} within {timeout:?}"))
                .observed(format!("last connection error: {last_error}"))
                .fix("check the barrier address (in Kubernetes: the headless Service and pod 0), and that worker 0 is running"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut reader = BufReader::new(stream);
    let host = crate::host::hostname();
    reader
        .get_mut()
        .write_all(Message::Ready { index, host }.render().as_bytes())
        .await
        .map_err(|e| Error::new(format!("barrier: sending READY to {addr} failed: {e}")))?;
    let mut line = String::new();
    match tokio::time::timeout_at(deadline, reader.read_line(&mut line)).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(_) => return Err(Error::new(format!("barrier: {addr} closed the connection before the start signal"))),
        Err(_) => {
            return Err(Error::new(format!("barrier: no start signal from {addr} within {timeout:?}"))
                .fix("some workers never arrived: see the barrier server's (worker 0's) error for which"))
        }
    }
    match Message::parse(&line) {
        Some(Message::Go { start_unix_ns }) => Ok(start_unix_ns),
        Some(Message::Abort { reason }) => Err(Error::new(format!("barrier aborted: {reason}"))),
        _ => Err(Error::new(format!("barrier: unexpected reply from {addr}: {:?}", line.trim_end()))),
    }
}

/// Converts a Unix-ns start time into a local `Instant`.
pub fn start_instant(start_unix_ns: u64) -> std::time::Instant {
    let now = crate::host::unix_now_ns();
    std::time::Instant::now() + Duration::from_nanos(start_unix_ns.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Ready { index: 3, host: "pod-3".into() },
            Message::Go { start_unix_ns: 1_700_000_000_000_000_000 },
            Message::Abort { reason: "2 of 4 workers arrived".into() },
        ] {
            assert_eq!(Message::parse(&m.render()), Some(m));
        }
        assert_eq!(Message::parse("HELLO"), None);
        assert_eq!(Message::parse("READY x y"), None);
    }

    #[test]
    fn missing_workers_are_listed_as_ranges() {
        assert_eq!(missing_workers(8, [0, 1, 4]), "2-3, 5-7");
        assert_eq!(missing_workers(3, [1]), "0, 2");
        assert_eq!(missing_workers(2, [0, 1]), "");
    }

    #[test]
    fn missing_pods_are_named_when_hostnames_follow_the_job() {
        let arrived: BTreeMap<u32, (String, ())> =
            [(0, ("sharebench-0".to_string(), ())), (2, ("sharebench-2".to_string(), ()))].into_iter().collect();
        assert_eq!(describe_missing(4, &arrived), "1, 3 (pods sharebench-1, sharebench-3)");
        let local: BTreeMap<u32, (String, ())> = [(0, ("node".to_string(), ()))].into_iter().collect();
        assert_eq!(describe_missing(2, &local), "1");
    }

    #[test]
    fn all_workers_get_the_same_start() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, 3, Duration::from_secs(10)));
        let joins: Vec<_> = (0..3)
            .map(|i| {
                let addr = addr.clone();
                std::thread::spawn(move || join(&addr, i, Duration::from_secs(10)))
            })
            .collect();
        let starts: Vec<u64> = joins.into_iter().map(|j| j.join().unwrap().unwrap()).collect();
        assert!(starts.iter().all(|&s| s == starts[0]));
        assert_eq!(server.join().unwrap().unwrap().len(), 3);
    }

    #[test]
    fn a_missing_worker_is_named_and_the_others_are_released() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || serve(listener, 3, Duration::from_millis(800)));
        let j = std::thread::spawn(move || join(&addr, 0, Duration::from_secs(5)));
        let err = server.join().unwrap().unwrap_err();
        assert!(err.problem.contains("1 of 3 workers arrived"), "{}", err.problem);
        assert!(err.problem.contains("missing: 1-2"), "{}", err.problem);
        assert!(j.join().unwrap().unwrap_err().problem.contains("barrier aborted"));
    }

    #[test]
    fn cancelling_releases_the_waiting_workers_at_once() {
        let listener = bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let started = std::time::Instant::now();
        let server = std::thread::spawn(move || serve_cancellable(listener, 2, Duration::from_secs(30), flag));
        let j = std::thread::spawn(move || join(&addr, 0, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(300));
        cancel.store(true, Ordering::SeqCst);
        assert!(server.join().unwrap().unwrap_err().problem.contains("cancelled after 1 of 2 workers arrived"));
        assert!(j.join().unwrap().unwrap_err().problem.contains("barrier aborted"));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_server_that_never_comes_is_a_clear_error() {
        let err = join("127.0.0.1:1", 0, Duration::from_millis(500)).unwrap_err();
        assert!(err.problem.contains("could not reach 127.0.0.1:1"));
    }
}
