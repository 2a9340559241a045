//! Any line a stranger can send to the start barrier: parsed and judged, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sharebench::rendezvous::{admit, Message, RunIdentity};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(Message::Ready { index, host, identity }) = Message::parse(&text) {
        let ours = RunIdentity { run_id: Some("experiment-1".into()), token: Some("t0k3n".into()), ..RunIdentity::new(4) };
        let _ = admit(&ours, index, &host, identity.as_ref(), &Default::default());
    }
});
