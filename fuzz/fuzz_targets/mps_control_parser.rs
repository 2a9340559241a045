//! Any output of `nvidia-cuda-mps-control`: classified, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sharebench::mps::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse::parse_ps(&text);
    let _ = parse::parse_server_list(&text);
    let _ = parse::parse_device_client_list(&text);
});
