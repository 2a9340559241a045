//! Any log text on stdin of `sharebench report -` (results mixed with other lines): parsed, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sharebench::load::parse_log_text(&text);
});
