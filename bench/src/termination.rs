//! SIGTERM and SIGINT for a worker (`sharebench run`), also as pid 1 of a Pod's PID namespace, where a signal
//! without a handler is ignored and the worker would measure on until the kubelet's SIGKILL: `kubectl delete`, a
//! node drain, preemption or `activeDeadlineSeconds` then lose everything measured. With [`install`], the first
//! signal is noted with the time it came (the measuring loop, the barrier wait and a command's window look at it
//! and stop, and the worker writes what it recorded, marked terminated); a second one ends the process at once.
//!
//! The handler only stores to atomics, reads the clock (`clock_gettime` is async-signal-safe) and, the second
//! time, calls `_exit`: nothing that could deadlock in a signal handler.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static AT_UNIX_NS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(signal: nix::libc::c_int) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        // SAFETY: _exit is async-signal-safe; the second signal means "now".
        unsafe { nix::libc::_exit(128 + signal) };
    }
    let mut now = nix::libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime is async-signal-safe and writes only to `now`.
    unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_REALTIME, &mut now) };
    AT_UNIX_NS.store(now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64, Ordering::SeqCst);
}

/// Handles SIGTERM and SIGINT from now on (see the module's doc).
pub fn install() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::SA_RESTART, SigSet::empty());
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler is async-signal-safe (see on_signal).
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Whether a stop was asked for: one atomic load, cheap enough for the measuring loop.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::Relaxed) != 0
}

/// The signal that asked to stop and when (Unix ns), if one did.
pub fn received() -> Option<(&'static str, u64)> {
    let name = match SIGNAL.load(Ordering::SeqCst) {
        0 => return None,
        s if s == nix::libc::SIGTERM => "SIGTERM",
        s if s == nix::libc::SIGINT => "SIGINT",
        _ => "a signal",
    };
    Some((name, AT_UNIX_NS.load(Ordering::SeqCst)))
}

/// The words a result and the terminal give a termination.
pub fn describe() -> Option<String> {
    received().map(|(name, at)| {
        format!(
            "terminated by {name} at {} (UTC); what was recorded before it is kept",
            crate::load::runs::utc_stamp(at)
        )
    })
}

/// The termination as a result records it.
pub fn as_result() -> Option<crate::result::Terminated> {
    received().map(|(signal, at_unix_ns)| crate::result::Terminated { signal: signal.into(), at_unix_ns })
}
