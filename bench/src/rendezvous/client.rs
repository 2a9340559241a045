//! A worker's side of the barrier: connect (retrying until the server is up), say READY, wait for GO and its
//! start instant, refuse one implausibly far away.

use super::protocol::{Message, RunIdentity};
use super::server::runtime;
use super::*;
use crate::error::{Error, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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
