//! Any text given to the result parser and record decoder: an error or a result, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(result) = sharebench::result::WorkerResult::from_json(text) {
            for lane in &result.lanes {
                let _ = sharebench::result::records::decode(&lane.records);
                let _ = sharebench::result::histogram::from_base64(&lane.latency_histogram);
            }
        }
    }
});
