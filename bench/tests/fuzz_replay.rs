//! The fuzz targets' bodies (fuzz/fuzz_targets/) on the stable toolchain, for CI: every seed (real results,
//! `kubectl logs`, MPS control texts, barrier lines, and the hostile inputs found so far) and a bounded number of
//! deterministic mutations of each (byte flips, insertions, deletions, truncations, splices). A panic fails the
//! test; what each parser returns is not judged here (its own tests do that). `bash fuzz/run.sh` fuzzes for
//! longer with cargo-fuzz on nightly.

use sharebench::analysis::stats::SplitMix64;
use sharebench::rendezvous::{admit, Message, RunIdentity};

/// Mutations of each seed, per target.
const MUTATIONS: usize = 400;

fn result_parser(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(result) = sharebench::result::WorkerResult::from_json(text) {
            for lane in &result.lanes {
                let _ = sharebench::result::records::decode(&lane.records);
                let _ = sharebench::result::histogram::from_base64(&lane.latency_histogram);
            }
        }
    }
}

fn report_input(data: &[u8]) {
    let _ = sharebench::load::parse_log_text(&String::from_utf8_lossy(data));
}

fn mps_control_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = sharebench::mps::parse::parse_ps(&text);
    let _ = sharebench::mps::parse::parse_server_list(&text);
    let _ = sharebench::mps::parse::parse_device_client_list(&text);
}

fn barrier_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(Message::Ready { index, host, identity }) = Message::parse(&text) {
        let ours =
            RunIdentity { run_id: Some("experiment-1".into()), token: Some("t0k3n".into()), ..RunIdentity::new(4) };
        let _ = admit(&ours, index, &host, identity.as_ref(), &Default::default());
    }
}

fn mutate(seed: &[u8], rng: &mut SplitMix64) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = if data.is_empty() { 0 } else { rng.below(data.len()) };
        match rng.below(5) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 => data.insert(at, rng.next_u64() as u8),
            2 if !data.is_empty() => {
                data.remove(at);
            }
            3 => data.truncate(at),
            _ => {
                let from = if seed.is_empty() { 0 } else { rng.below(seed.len()) };
                let end = (from + 1 + rng.below(64)).min(seed.len());
                data.splice(at..at, seed[from..end].iter().copied());
            }
        }
    }
    data
}

fn replay(target: fn(&[u8]), seeds: &[Vec<u8>]) {
    let mut rng = SplitMix64::new(0x5eed);
    for seed in seeds {
        target(seed);
        for _ in 0..MUTATIONS {
            target(&mutate(seed, &mut rng));
        }
    }
}

fn committed(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    sharebench::load::files::read_text(std::path::Path::new(&full)).unwrap()
}

/// A real result line (the first of a committed run), shortened to a few records so mutations reach every field.
fn real_result() -> Vec<u8> {
    let text = committed("results/h100/faults/kill-worker/results/results.jsonl.gz");
    text.lines().next().unwrap().as_bytes().to_vec()
}

#[test]
fn the_result_parser_survives_its_seeds_and_their_mutations() {
    let real = real_result();
    let bomb = String::from_utf8(real.clone())
        .unwrap()
        .replacen("\"latency_histogram\":\"", "\"latency_histogram\":\"HISTFAAAACX/////", 1)
        .into_bytes();
    replay(result_parser, &[real, bomb, b"{\"format\":\"sharebench-result\"".to_vec(), b"{}".to_vec()]);
}

#[test]
fn the_log_reader_survives_its_seeds_and_their_mutations() {
    let logs = committed("results/h100/pod-isolation/pod-path/logs-mps.txt.gz");
    let short: Vec<u8> = logs.lines().take(40).collect::<Vec<_>>().join("\n").into_bytes();
    let mut stray = short.clone();
    stray.insert(stray.len() / 2, 0xff);
    replay(report_input, &[short, stray, b"[pod/sb-0] \x1b]0;owned\x07 READY".to_vec()]);
}

#[test]
fn the_mps_control_parsers_survive_their_seeds_and_their_mutations() {
    replay(
        mps_control_parser,
        &[
            b"Server not found\n".to_vec(),
            b"PID ID SERVER DEVICE NAMESPACE COMMAND\n452 1 470 GPU-e370a465-49c4-8458 4026531836 python3\n".to_vec(),
            b"Cannot find MPS control daemon process\n".to_vec(),
            b"[0] 00:00.0, NVIDIA H100 80GB HBM3\n452.1\n".to_vec(),
        ],
    );
}

#[test]
fn the_barrier_parser_survives_its_seeds_and_their_mutations() {
    replay(
        barrier_parser,
        &[
            b"READY 3 sharebench-3 workers=4 run=experiment-1 digest=0123456789abcdef token=t0k3n\n".to_vec(),
            b"READY 0 sharebench-0 workers=2 run=exp1\n".to_vec(),
            b"GO 18446744073709551615\n".to_vec(),
            b"ABORT busy: too many\n".to_vec(),
        ],
    );
}
