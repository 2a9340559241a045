//! The worker lifecycle (`sharebench::lifecycle`) driven by a mock workload, as hyperfine tests its benchmark
//! loop through a mock executor: no GPU, the same steps and the same result file as a real worker. The SIGTERM
//! case raises a real SIGTERM in this process with the real handler installed, so it lives in a test binary of
//! its own (a signal is process-wide) and runs its cases in order in one test.

use sharebench::arrivals::Arrivals;
use sharebench::error::{exit, Result};
use sharebench::fsio::Overwrite;
use sharebench::lifecycle::{self, Measured, Output, Prepared, Settings, Workload};
use sharebench::rendezvous::RunIdentity;
use sharebench::result::histogram;
use sharebench::result::records::{self, KernelRecord};
use sharebench::result::{GpuIdentity, LaneResult, RunConfig, WorkerResult};
use std::time::{Duration, Instant};

/// Records one "kernel" every 100 us, like a worker's loop: until `kernels`, or until told to stop. With
/// `sigterm_after`, it sends itself SIGTERM after that many, as the kubelet would mid-measurement.
struct MockWorkload {
    kernels: u64,
    sigterm_after: Option<u64>,
    recorded: Vec<KernelRecord>,
    host_base_unix_ns: u64,
    steps: Vec<&'static str>,
}

impl MockWorkload {
    fn new(kernels: u64, sigterm_after: Option<u64>) -> MockWorkload {
        MockWorkload { kernels, sigterm_after, recorded: vec![], host_base_unix_ns: 0, steps: vec![] }
    }
}

impl Workload for MockWorkload {
    fn prepare(&mut self) -> Result<Prepared> {
        self.steps.push("prepare");
        let gpu = GpuIdentity { name: "mock".into(), uuid: "GPU-mock".into(), sm_count: 132, ..Default::default() };
        Ok(Prepared {
            gpu,
            sharing: lifecycle::mode::unverified(),
            shape: None,
            sync: Some("spin (mock)".into()),
            ready: true,
        })
    }

    fn measure(&mut self, start_unix_ns: u64) -> Result<u64> {
        self.steps.push("measure");
        self.host_base_unix_ns = start_unix_ns;
        let base = Instant::now();
        for i in 0..self.kernels {
            if sharebench::termination::requested() {
                break;
            }
            if self.sigterm_after == Some(i) {
                nix::sys::signal::raise(nix::sys::signal::Signal::SIGTERM).unwrap();
                continue;
            }
            let submit_ns = base.elapsed().as_nanos() as u64;
            std::thread::sleep(Duration::from_micros(100));
            let latency_ns = base.elapsed().as_nanos() as u64 - submit_ns;
            let device_start_ns = 1_000_000 + submit_ns;
            let device_end_ns = device_start_ns + latency_ns / 2;
            self.recorded.push(KernelRecord { submit_ns, latency_ns, device_start_ns, device_end_ns, sm_count: 132 });
        }
        Ok(sharebench::host::unix_now_ns())
    }

    fn finish(self: Box<Self>, worker: u32) -> Result<Measured> {
        let mut h = histogram::new_latency_histogram();
        for r in &self.recorded {
            histogram::record(&mut h, r.latency_ns);
        }
        let encoded = records::encode(&self.recorded, self.host_base_unix_ns).unwrap();
        let steps = self.steps.join(" -> ");
        let lane = LaneResult {
            worker,
            kernels: encoded.count,
            latency_histogram: histogram::to_base64(&h),
            records: encoded,
            device_stamps: true,
        };
        Ok(Measured {
            lanes: vec![lane],
            tenant: None,
            sharing: None,
            problems: vec![],
            summary: vec![steps],
            memory: None,
        })
    }
}

fn config() -> RunConfig {
    RunConfig {
        shape: None,
        command: None,
        kernels: Some(200),
        duration_s: None,
        warmup: 0,
        arrivals: Arrivals::Closed,
        workers: 1,
        worker_index: 0,
        streams: 1,
        barrier: false,
        mps_active_thread_percentage: None,
        repeat: 0,
        sync: None,
        alone_indices: vec![],
        command_line: vec!["mock".into()],
    }
}

fn settings(out: &std::path::Path) -> Settings {
    Settings {
        worker_index: 0,
        identity: RunIdentity { workers: 1, run_id: Some("mock-run".into()), digest: None, token: None },
        barrier: None,
        lead: Duration::ZERO,
        telemetry: false,
        output: Output { path: Some(out.to_path_buf()), overwrite: Overwrite::Refuse },
        result: lifecycle::blank_result("mock-run".into(), "timeslice", None, config()),
    }
}

fn read(path: &std::path::Path) -> WorkerResult {
    WorkerResult::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_lifecycle_writes_a_complete_result_and_after_sigterm_mid_measurement_keeps_what_was_recorded() {
    sharebench::termination::install();
    let dir = tempfile::tempdir().unwrap();

    // A run to its end: every kernel recorded, complete, the GPU and the sync choice filled in from prepare.
    let complete = dir.path().join("complete.json");
    let code = lifecycle::run(settings(&complete), Box::new(MockWorkload::new(200, None))).unwrap();
    assert_eq!(code, exit::OK);
    let r = read(&complete);
    assert!(r.status.complete && r.status.error.is_none() && r.status.terminated.is_none(), "{:?}", r.status);
    assert_eq!((r.lanes.len(), r.lanes[0].kernels), (1, 200));
    assert_eq!((r.gpu.name.as_str(), r.config.sync.as_deref()), ("mock", Some("spin (mock)")));
    assert!(r.started_unix_ns > 0 && r.finished_unix_ns > r.started_unix_ns);

    // SIGTERM after 50 kernels: measuring stops at once, the 50 are written, the result says terminated and when.
    let stopped = dir.path().join("terminated.json");
    let before = sharebench::host::unix_now_ns();
    let code = lifecycle::run(settings(&stopped), Box::new(MockWorkload::new(10_000, Some(50)))).unwrap();
    let after = sharebench::host::unix_now_ns();
    assert_eq!(code, exit::INCOMPLETE);
    let r = read(&stopped);
    assert_eq!(r.lanes[0].kernels, 50, "the kernels recorded before the signal are kept, none after it");
    assert!(!r.status.complete);
    let terminated = r.status.terminated.as_ref().expect("marked terminated");
    assert_eq!(terminated.signal, "SIGTERM");
    assert!((before..=after).contains(&terminated.at_unix_ns), "the signal's time is recorded");
    assert!(r.status.error.as_deref().unwrap().contains("terminated by SIGTERM"), "{:?}", r.status.error);
    assert!(after - before < 2_000_000_000, "it stopped at once, not after the 10,000 kernels");

    // The result file is never replaced without being asked.
    let again = lifecycle::run(settings(&stopped), Box::new(MockWorkload::new(1, None)));
    assert!(again.unwrap_err().problem.contains("exists"));
    assert_eq!(read(&stopped).lanes[0].kernels, 50);
}
