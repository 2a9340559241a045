//! Writes synthetic worker results in the real result format, for the report's scale benchmark
//! (`bench/benches/report_scale.sh`). The records are made up (MPS-like: workers' kernels overlap, with jitter);
//! they measure nothing and are never committed under results/. They are plausible in every way `report` checks
//! (host windows that hold the device intervals, closed-loop lanes that never overlap themselves, histograms that
//! match the records, a share of the SMs that fits the GPU), and `bench/tests/synth.rs` holds them to that.
//!
//! Usage: cargo run --release --example synth_results -- DIR WORKERS KERNELS

use sharebench::result::{self, histogram, records, GpuIdentity, HostIdentity, LaneResult, RunConfig, RunStatus};
use sharebench::result::{SharingEvidence, SharingVerdict, WorkerResult};
use sharebench::workload::{KernelKind, KernelShape};

/// Wall-clock time (Unix ns) at which every synthetic worker starts measuring, as after a barrier.
const WALL_START_NS: u64 = 1_796_000_000_000_000_000;
/// SMs each worker's kernel uses: 64 workers x 2 blocks fit one 132-SM GPU side by side.
const BLOCKS: u32 = 2;

#[allow(dead_code)]
fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: synth_results DIR WORKERS KERNELS");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[1]);
    let (workers, kernels): (u32, u64) = (args[2].parse().expect("WORKERS"), args[3].parse().expect("KERNELS"));
    generate(&dir, workers, kernels);
}

/// Writes `workers` result files of `kernels` records each into `dir`.
pub fn generate(dir: &std::path::Path, workers: u32, kernels: u64) {
    std::fs::create_dir_all(dir).expect("create DIR");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for w in 0..workers {
        let mut h = histogram::new_latency_histogram();
        // A closed loop: each kernel is submitted when the last one came back, runs a little after its launch,
        // and the device clock (`%globaltimer`, shared by all workers) runs beside the host's.
        let device_base = 1_000_000_000_000u64 + w as u64 * 37_000;
        let mut host = 0u64;
        let recs: Vec<records::KernelRecord> = (0..kernels)
            .map(|_| {
                let launch = 4_000 + next() % 2_000;
                let duration = 600_000 + next() % 60_000;
                let latency = launch + duration + 4_000;
                histogram::record(&mut h, latency);
                let start = device_base + host + launch;
                let r = records::KernelRecord {
                    submit_ns: host,
                    latency_ns: latency,
                    device_start_ns: start,
                    device_end_ns: start + duration,
                    sm_count: BLOCKS as u16,
                };
                host += latency;
                r
            })
            .collect();
        let result = WorkerResult {
            format: result::FORMAT.into(),
            schema_version: result::SCHEMA_VERSION,
            sharebench_version: env!("CARGO_PKG_VERSION").into(),
            run_id: "synthetic".into(),
            mode: "mps".into(),
            group: None,
            status: RunStatus { complete: true, error: None, terminated: None },
            host: HostIdentity {
                hostname: "synthetic".into(),
                pid: 1000 + w,
                pid_namespace: None,
                ipc_namespace: None,
                pod: None,
            },
            gpu: GpuIdentity {
                name: "synthetic".into(),
                uuid: "GPU-00000000-0000-0000-0000-000000000000".into(),
                ordinal: 0,
                compute_capability: (9, 0),
                sm_count: 132,
                context_sm_count: 132,
                fp32_lanes_per_sm: Some(128),
                clock_khz: Some(1_980_000),
                memory_bytes: 0,
                cuda_driver_api: 13000,
                driver_version: None,
                context_memory: None,
            },
            config: RunConfig {
                shape: Some(KernelShape {
                    kernel: KernelKind::Fma,
                    blocks: BLOCKS,
                    threads: 256,
                    iters: 70_000,
                    bytes: 0,
                }),
                command: None,
                kernels: Some(kernels),
                duration_s: None,
                warmup: 0,
                arrivals: sharebench::arrivals::Arrivals::Closed,
                workers,
                worker_index: w,
                streams: 1,
                barrier: true,
                mps_active_thread_percentage: None,
                repeat: 0,
                sync: Some("spin (auto: no CPU quota)".into()),
                alone_indices: vec![],
                command_line: vec!["synth_results".into()],
            },
            sharing: SharingEvidence { verdict: SharingVerdict::Unverified, proof: None, check: None },
            telemetry: None,
            tenant: None,
            host_conditions: None,
            started_unix_ns: WALL_START_NS,
            finished_unix_ns: WALL_START_NS + host + 1_000_000,
            lanes: vec![LaneResult {
                worker: w,
                kernels,
                latency_histogram: histogram::to_base64(&h),
                records: records::encode(&recs, WALL_START_NS).expect("encode"),
                device_stamps: true,
            }],
        };
        std::fs::write(dir.join(format!("w{w}.json")), result.to_json_line() + "\n").expect("write");
    }
}
