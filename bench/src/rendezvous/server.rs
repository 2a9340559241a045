//! The barrier's server: accepts READY lines until every worker of the run is there (or the timeout), then
//! answers each live one GO with the common start instant, or ABORT with the missing workers.

use super::protocol::{admit, describe_missing, Admission, Message, RunIdentity};
use super::*;
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
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

/// Serves one barrier for the workers of `identity`; returns the hosts that arrived, by index.
pub fn serve(
    listener: std::net::TcpListener,
    identity: RunIdentity,
    timeout: Duration,
) -> Result<BTreeMap<u32, String>> {
    serve_cancellable(listener, identity, timeout, Arc::new(AtomicBool::new(false)))
}

/// Like [`serve`], but gives up early (releasing everyone with ABORT) once `cancel` is set, e.g. when the parent
/// sees a worker exit before arriving.
pub fn serve_cancellable(
    listener: std::net::TcpListener,
    identity: RunIdentity,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
) -> Result<BTreeMap<u32, String>> {
    runtime()?.block_on(serve_async(listener, identity, timeout, cancel))
}

/// What one connection said: its READY (or why it said nothing usable), its stream and its peer.
type Arrival = (std::result::Result<Message, String>, TcpStream, String);

/// Reads one bounded line from a new connection.
async fn identify(stream: TcpStream) -> Arrival {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let mut reader = BufReader::new(stream);
    let mut bytes = Vec::new();
    let read =
        tokio::time::timeout(IDENTIFY_TIMEOUT, (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut bytes)).await;
    let said = match read {
        Err(_) => Err(format!("no READY line within {IDENTIFY_TIMEOUT:?}")),
        Ok(Err(e)) => Err(format!("read failed: {e}")),
        Ok(Ok(0)) => Err("closed without a READY line".into()),
        Ok(Ok(_)) if bytes.last() != Some(&b'\n') => Err(format!("line longer than {MAX_LINE} bytes")),
        Ok(Ok(_)) => match std::str::from_utf8(&bytes).ok().and_then(Message::parse) {
            Some(m @ Message::Ready { .. }) => Ok(m),
            _ => Err("expected READY <index> <host> workers=<N> [run=<id>] [digest=<d>]".into()),
        },
    };
    (said, reader.into_inner(), peer)
}

/// Refusals on the server's stderr: the first [`MAX_LOGGED`] one by one, then a count.
#[derive(Default)]
struct RefusalLog {
    count: usize,
}

impl RefusalLog {
    fn note(&mut self, peer: &str, reason: &str) {
        self.count += 1;
        if self.count <= MAX_LOGGED {
            eprintln!("sharebench barrier: refused {peer}: {reason}");
        }
    }
    fn close(&self) {
        if self.count > MAX_LOGGED {
            eprintln!(
                "sharebench barrier: refused {} connections in all ({} not logged)",
                self.count,
                self.count - MAX_LOGGED
            );
        }
    }
}

async fn refuse(mut stream: TcpStream, reason: String) {
    let _ =
        tokio::time::timeout(Duration::from_secs(1), stream.write_all(Message::Abort { reason }.render().as_bytes()))
            .await;
}

async fn serve_async(
    listener: std::net::TcpListener,
    identity: RunIdentity,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
) -> Result<BTreeMap<u32, String>> {
    let workers = identity.workers;
    let listener = TcpListener::from_std(listener).map_err(|e| Error::new(format!("barrier socket: {e}")))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Arrival>(MAX_UNIDENTIFIED);
    let accept = tokio::spawn(accept_loop(listener, tx));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut arrived: BTreeMap<u32, (String, TcpStream)> = BTreeMap::new();
    let mut log = RefusalLog::default();
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
            Ok(Some((Ok(Message::Ready { index, host, identity: theirs }), stream, peer))) => {
                // An index is held only by a live connection: one that went away frees it.
                if arrived.get(&index).is_some_and(|(_, held)| !alive(held)) {
                    let (gone, _) = arrived.remove(&index).expect("held");
                    log.note(&gone, &format!("worker index {index} left before the start: its index is free again"));
                }
                let hosts: BTreeMap<u32, String> = arrived.iter().map(|(i, (h, _))| (*i, h.clone())).collect();
                match admit(&identity, index, &host, theirs.as_ref(), &hosts) {
                    Admission::Admit => {
                        arrived.insert(index, (host, stream));
                    }
                    Admission::Refuse(reason) => {
                        log.note(&peer, &reason);
                        refuse(stream, reason).await;
                    }
                }
                if arrived.len() as u32 == workers {
                    // Everyone is here: only if everyone still is. Who left waits to be replaced.
                    let gone: Vec<u32> = arrived.iter().filter(|(_, (_, s))| !alive(s)).map(|(i, _)| *i).collect();
                    for i in gone {
                        let (host, _) = arrived.remove(&i).expect("listed");
                        log.note(&host, &format!("worker index {i} left before the start: its index is free again"));
                    }
                }
            }
            Ok(Some((said, stream, peer))) => {
                let reason = said.err().unwrap_or_else(|| "expected READY".into());
                log.note(&peer, &reason);
                refuse(stream, reason).await;
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
    log.close();
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

/// Whether a worker's connection is still open: it has said its READY and waits, so a readable end (EOF) or
/// anything more it sends means it is gone (or not a worker).
fn alive(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Accepts connections until the server stops: each gets [`IDENTIFY_TIMEOUT`] to send its READY line, at most
/// [`MAX_UNIDENTIFIED`] at once; a new one evicts the oldest that is still silent (a real worker speaks as it
/// connects, so only silent ones are ever evicted). A failed accept (too many open files, a connection reset
/// before it was taken) is waited out, never the end of the barrier.
async fn accept_loop(listener: TcpListener, tx: tokio::sync::mpsc::Sender<Arrival>) {
    use std::collections::VecDeque;
    let waiting: Arc<std::sync::Mutex<VecDeque<(u64, tokio::task::AbortHandle)>>> = Default::default();
    let mut next_id = 0u64;
    let mut accept_errors = 0usize;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_errors += 1;
                if accept_errors <= MAX_LOGGED {
                    eprintln!("sharebench barrier: accept failed ({e}); still listening");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let (tx, queue, id) = (tx.clone(), waiting.clone(), next_id);
        next_id += 1;
        let task = tokio::spawn(async move {
            let arrival = identify(stream).await;
            queue.lock().expect("queue lock").retain(|(i, _)| *i != id);
            let _ = tx.send(arrival).await;
        });
        let mut queue = waiting.lock().expect("queue lock");
        if queue.len() >= MAX_UNIDENTIFIED {
            if let Some((_, oldest)) = queue.pop_front() {
                oldest.abort();
            }
        }
        queue.push_back((id, task.abort_handle()));
    }
}
