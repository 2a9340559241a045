//! Writes synthetic worker results in the real result format, for the report's scale benchmark
//! (`bench/benches/report_scale.sh`). The records are made up (MPS-like: workers' kernels overlap, with jitter);
//! they measure nothing and are never committed under results/.
//!
//! Usage: cargo run --release --example synth_results -- DIR WORKERS KERNELS

use sharebench::result::{self, histogram, records, GpuIdentity, HostIdentity, LaneResult, RunConfig, RunStatus};
use sharebench::result::{SharingEvidence, SharingVerdict, WorkerResult};
use sharebench::workload::{KernelKind, KernelShape};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: synth_results DIR WORKERS KERNELS");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[1]);
    let (workers, kernels): (u32, u64) = (args[2].parse().expect("WORKERS"), args[3].parse().expect("KERNELS"));
    std::fs::create_dir_all(&dir).expect("create DIR");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for w in 0..workers {
        let mut h = histogram::new_latency_histogram();
        let mut t = 1_700_000_000_000_000_000u64 + w as u64 * 37_000;
        let recs: Vec<records::KernelRecord> = (0..kernels)
            .map(|k| {
                let duration = 600_000 + next() % 60_000;
                let latency = duration + 8_000 + next() % 4_000;
                histogram::record(&mut h, latency);
                let r = records::KernelRecord {
                    submit_ns: k * 612_000,
                    latency_ns: latency,
                    device_start_ns: t,
                    device_end_ns: t + duration,
                    sm_count: 132,
                };
                t += duration + 10_000;
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
            },
            config: RunConfig {
                shape: Some(KernelShape {
                    kernel: KernelKind::Fma,
                    blocks: 132,
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
                command_line: vec!["synth_results".into()],
            },
            sharing: SharingEvidence { verdict: SharingVerdict::Unverified, proof: None, check: None },
            telemetry: None,
            tenant: None,
            host_conditions: None,
            started_unix_ns: 0,
            finished_unix_ns: 0,
            lanes: vec![LaneResult {
                worker: w,
                kernels,
                latency_histogram: histogram::to_base64(&h),
                records: records::encode(&recs, 0).expect("encode"),
                device_stamps: true,
            }],
        };
        std::fs::write(dir.join(format!("w{w}.json")), result.to_json_line() + "\n").expect("write");
    }
}
