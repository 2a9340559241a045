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

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

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

/// What every worker of one run agrees on, sent with READY and checked by the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunIdentity {
    pub workers: u32,
    /// The run id (`--run-id`); `None` where the worker was given none.
    pub run_id: Option<String>,
    /// The scenario's digest for plan points ([`digest`]).
    pub digest: Option<String>,
    /// A secret every worker of the run was given (`--barrier-token`); the server admits no one without it.
    pub token: Option<String>,
}

impl RunIdentity {
    pub fn new(workers: u32) -> RunIdentity {
        RunIdentity { workers, ..RunIdentity::default() }
    }
}

/// A protocol line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `identity: None` for a READY without `workers=` (a worker of an older sharebench, or not one at all).
    Ready {
        index: u32,
        host: String,
        identity: Option<RunIdentity>,
    },
    Go {
        start_unix_ns: u64,
    },
    Abort {
        reason: String,
    },
}

impl Message {
    pub fn parse(line: &str) -> Option<Message> {
        let line = line.trim_end();
        let mut words = line.splitn(2, ' ');
        match (words.next()?, words.next()) {
            ("READY", Some(rest)) => parse_ready(rest),
            ("GO", Some(ns)) if !ns.contains(' ') => Some(Message::Go { start_unix_ns: ns.parse().ok()? }),
            ("ABORT", reason) => Some(Message::Abort { reason: reason.unwrap_or("").trim().to_string() }),
            _ => None,
        }
    }

    pub fn render(&self) -> String {
        match self {
            Message::Ready { index, host, identity } => {
                let mut line = format!("READY {index} {host}");
                if let Some(id) = identity {
                    line += &format!(" workers={}", id.workers);
                    if let Some(run) = &id.run_id {
                        line += &format!(" run={run}");
                    }
                    if let Some(digest) = &id.digest {
                        line += &format!(" digest={digest}");
                    }
                    if let Some(token) = &id.token {
                        line += &format!(" token={token}");
                    }
                }
                line + "\n"
            }
            Message::Go { start_unix_ns } => format!("GO {start_unix_ns}\n"),
            Message::Abort { reason } => format!("ABORT {reason}\n"),
        }
    }
}

/// `<index> <host> [key=value ...]`: the host is one word; keys other than workers, run and digest are refused.
fn parse_ready(rest: &str) -> Option<Message> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let index = words.next()?.parse().ok()?;
    let host = words.next().unwrap_or("").to_string();
    if host.contains('=') {
        return None;
    }
    let (mut workers, mut run_id, mut digest, mut token) = (None, None, None, None);
    for word in words {
        match word.split_once('=')? {
            ("workers", n) => workers = Some(n.parse().ok()?),
            ("run", id) if !id.is_empty() => run_id = Some(id.to_string()),
            ("digest", d) if !d.is_empty() => digest = Some(d.to_string()),
            ("token", t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return None,
        }
    }
    let identity = workers.map(|workers| RunIdentity { workers, run_id, digest, token });
    Some(Message::Ready { index, host, identity })
}

/// A fresh barrier token: 128 bits from the kernel's random source, as hex.
pub fn new_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| Error::new(format!("cannot read /dev/urandom for a barrier token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A short digest of a text (FNV-1a, 64 bits, hex): enough to tell two scenarios apart, not a security measure.
pub fn digest(text: &str) -> String {
    let hash = crate::units::fnv1a(text.bytes());
    format!("{hash:016x}")
}

/// What the server does with a READY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Refused with this reason; the index stays with whoever holds it and the run goes on.
    Refuse(String),
}

/// Whether the server (of `ours`) admits worker `index` from `host` claiming `theirs`, given who arrived.
pub fn admit(
    ours: &RunIdentity,
    index: u32,
    host: &str,
    theirs: Option<&RunIdentity>,
    arrived: &BTreeMap<u32, String>,
) -> Admission {
    let Some(theirs) = theirs else {
        return Admission::Refuse(
            "READY without workers=<N>: not a worker of this sharebench version (a stale or foreign worker)".into(),
        );
    };
    if theirs.workers != ours.workers {
        return Admission::Refuse(format!(
            "worker count {} is not this barrier's {} (another run, or a stale worker)",
            theirs.workers, ours.workers
        ));
    }
    if index >= ours.workers {
        return Admission::Refuse(format!("worker index {index} out of range 0..{}", ours.workers));
    }
    let differs = |what: &str, mine: &Option<String>, yours: &Option<String>| match (mine, yours) {
        (Some(m), Some(y)) if m != y => Some(format!("{what} {y} is not this barrier's {m}")),
        (Some(m), None) => Some(format!("no {what} given; this barrier's is {m}")),
        _ => None,
    };
    if let Some(reason) = differs("run id", &ours.run_id, &theirs.run_id)
        .or_else(|| differs("scenario digest", &ours.digest, &theirs.digest))
    {
        return Admission::Refuse(format!("{reason} (another run, or a stale worker)"));
    }
    if ours.token.is_some() && ours.token != theirs.token {
        // Never echo the token: the refusal goes to whoever connected.
        return Admission::Refuse("barrier token missing or wrong (not a worker of this run)".into());
    }
    match arrived.get(&index) {
        None => Admission::Admit,
        Some(first) => Admission::Refuse(format!(
            "worker index {index} is already held by {first}: refusing {host} (two workers given one index, or a stale Pod of an earlier attempt?)"
        )),
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

/// Joins the barrier at `addr` as worker `index` of `identity`; returns the common start instant (Unix ns).
pub fn join(addr: &str, index: u32, identity: &RunIdentity, timeout: Duration) -> Result<u64> {
    runtime()?.block_on(join_async(addr, index, identity, timeout))
}

async fn join_async(addr: &str, index: u32, identity: &RunIdentity, timeout: Duration) -> Result<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = String::from("no attempt made");
    loop {
        if crate::termination::requested() {
            return Err(terminated_waiting());
        }
        match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => match ready_and_wait(stream, addr, index, identity, deadline, timeout).await? {
                Message::Go { start_unix_ns } => return plausible_start(start_unix_ns, addr),
                Message::Abort { reason } if reason.starts_with(BUSY) => last_error = format!("refused: {reason}"),
                Message::Abort { reason } => return Err(Error::new(format!("barrier aborted: {reason}"))),
                Message::Ready { .. } => unreachable!("ready_and_wait returns GO or ABORT"),
            },
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => {}
        }
        if tokio::time::Instant::now() + Duration::from_millis(200) >= deadline {
            return Err(Error::new(format!("barrier: could not reach {addr} within {timeout:?}"))
                .observed(format!("last connection error: {last_error}"))
                .fix("check the barrier address (in Kubernetes: the headless Service and pod 0), and that worker 0 is running"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends READY on a connected stream and waits for the server's GO or ABORT.
async fn ready_and_wait(
    stream: TcpStream,
    addr: &str,
    index: u32,
    identity: &RunIdentity,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Message> {
    let mut reader = BufReader::new(stream);
    let host = crate::host::hostname();
    reader
        .get_mut()
        .write_all(Message::Ready { index, host, identity: Some(identity.clone()) }.render().as_bytes())
        .await
        .map_err(|e| Error::new(format!("barrier: sending READY to {addr} failed: {e}")))?;
    let mut bytes = Vec::new();
    let mut limited = (&mut reader).take(MAX_LINE as u64);
    let read = tokio::select! {
        read = tokio::time::timeout_at(deadline, limited.read_until(b'\n', &mut bytes)) => read,
        _ = until_terminated() => return Err(terminated_waiting()),
    };
    match read {
        Ok(Ok(n)) if n > 0 && bytes.last() == Some(&b'\n') => {}
        Ok(Ok(n)) if n > 0 => {
            return Err(Error::new(format!(
                "barrier: {addr} sent a reply longer than {MAX_LINE} bytes: not a sharebench barrier"
            )))
        }
        Ok(_) => return Err(Error::new(format!("barrier: {addr} closed the connection before the start signal"))),
        Err(_) => {
            return Err(Error::new(format!("barrier: no start signal from {addr} within {timeout:?}"))
                .fix("some workers never arrived: see the barrier server's (worker 0's) error for which"))
        }
    }
    let line = String::from_utf8_lossy(&bytes);
    match Message::parse(&line) {
        Some(m @ (Message::Go { .. } | Message::Abort { .. })) => Ok(m),
        _ => {
            let shown: String = line.trim_end().chars().take(80).collect();
            Err(Error::new(format!("barrier: unexpected reply from {addr}: {}", crate::units::printable(&shown))))
        }
    }
}

/// Resolves once this worker was told to stop (SIGTERM, SIGINT; see `termination`).
async fn until_terminated() {
    while !crate::termination::requested() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminated_waiting() -> Error {
    let why = crate::termination::describe().unwrap_or_else(|| "terminated".into());
    Error::new(format!("barrier: {why} while waiting for the other workers; nothing was measured yet"))
}

/// A GO's start instant, if it is one a real server sends: within [`MAX_START_AHEAD`] of now.
fn plausible_start(start_unix_ns: u64, addr: &str) -> Result<u64> {
    let now = crate::host::unix_now_ns();
    let ahead = MAX_START_AHEAD.as_nanos() as u64;
    if start_unix_ns > now.saturating_add(ahead) || start_unix_ns < now.saturating_sub(ahead) {
        let away = (start_unix_ns as f64 - now as f64) / 1e9;
        return Err(Error::new(format!(
            "barrier: {addr} gave a start instant {away:.0} s from now (at most {} s): not a sharebench barrier",
            MAX_START_AHEAD.as_secs()
        )));
    }
    Ok(start_unix_ns)
}

/// Converts a Unix-ns start time into a local `Instant`.
pub fn start_instant(start_unix_ns: u64) -> std::time::Instant {
    let now = crate::host::unix_now_ns();
    std::time::Instant::now() + Duration::from_nanos(start_unix_ns.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(workers: u32) -> RunIdentity {
        RunIdentity { workers, run_id: Some("experiment-1".into()), digest: Some(digest("scenario")), token: None }
    }

    #[test]
    fn messages_round_trip() {
        for m in [
            Message::Ready { index: 3, host: "pod-3".into(), identity: Some(run(4)) },
            Message::Ready { index: 0, host: "node".into(), identity: Some(RunIdentity::new(2)) },
            Message::Go { start_unix_ns: 1_700_000_000_000_000_000 },
            Message::Abort { reason: "2 of 4 workers arrived".into() },
        ] {
            assert_eq!(Message::parse(&m.render()), Some(m));
        }
        assert_eq!(Message::parse("HELLO"), None);
        assert_eq!(Message::parse("READY x y"), None);
        assert_eq!(Message::parse("READY 1 h color=red"), None);
        assert_eq!(Message::parse("READY 1 h workers=x"), None);
        assert_eq!(Message::parse("READY 1 h"), Some(Message::Ready { index: 1, host: "h".into(), identity: None }));
    }

    proptest::proptest! {
        #[test]
        fn any_line_a_stranger_sends_is_parsed_or_refused_never_a_panic(line in "(READY )?[ -~]{0,200}") {
            if let Some(Message::Ready { index, host, identity }) = Message::parse(&line) {
                let _ = admit(&run(4), index, &host, identity.as_ref(), &BTreeMap::new());
            }
        }
    }

    #[test]
    fn only_this_runs_workers_are_admitted() {
        let ours = run(4);
        let none = BTreeMap::new();
        assert_eq!(admit(&ours, 0, "sharebench-0", Some(&run(4)), &none), Admission::Admit);
        let refused = |theirs: Option<&RunIdentity>| match admit(&ours, 1, "sharebench-1", theirs, &none) {
            Admission::Refuse(reason) => reason,
            other => panic!("{other:?}"),
        };
        let other_run = RunIdentity { run_id: Some("experiment-2".into()), ..run(4) };
        assert!(refused(Some(&other_run)).contains("run id experiment-2 is not this barrier's experiment-1"));
        assert!(refused(Some(&run(8))).contains("worker count 8 is not this barrier's 4"));
        let other_scenario = RunIdentity { digest: Some(digest("another")), ..run(4) };
        assert!(refused(Some(&other_scenario)).contains("scenario digest"));
        assert!(refused(Some(&RunIdentity::new(4))).contains("no run id given"));
        assert!(refused(None).contains("without workers="));
        assert!(
            matches!(admit(&ours, 4, "h", Some(&run(4)), &none), Admission::Refuse(r) if r.contains("out of range"))
        );
        // A server that knows no run id (compare's loopback barrier) checks the count alone.
        assert_eq!(admit(&RunIdentity::new(4), 2, "node", Some(&run(4)), &none), Admission::Admit);
    }

    #[test]
    fn a_held_index_is_never_taken_and_no_line_aborts_the_run() {
        // `READY 0 sharebench-0 workers=2 run=...` from anyone who knows the run id once aborted the whole run.
        let arrived: BTreeMap<u32, String> = [(0, "sharebench-0".to_string())].into_iter().collect();
        for host in ["sharebench-0-old", "sharebench-0"] {
            assert!(matches!(
                admit(&run(2), 0, host, Some(&run(2)), &arrived),
                Admission::Refuse(r) if r.contains("already held by sharebench-0")
            ));
        }
    }

    #[test]
    fn with_a_token_only_workers_that_know_it_are_admitted_and_it_is_never_echoed() {
        let ours = RunIdentity { token: Some("s3cret".into()), ..run(2) };
        let none = BTreeMap::new();
        assert_eq!(admit(&ours, 0, "h", Some(&ours), &none), Admission::Admit);
        for theirs in [run(2), RunIdentity { token: Some("guess".into()), ..run(2) }] {
            match admit(&ours, 0, "h", Some(&theirs), &none) {
                Admission::Refuse(r) => assert!(r.contains("token missing or wrong") && !r.contains("s3cret"), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        let line = Message::Ready { index: 1, host: "h".into(), identity: Some(ours.clone()) }.render();
        assert!(line.contains(" token=s3cret"));
        assert_eq!(Message::parse(&line), Some(Message::Ready { index: 1, host: "h".into(), identity: Some(ours) }));
    }

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
