//! Grouping, overlap, throughput and comparisons on synthetic workers with known answers.

use super::*;
use crate::result::records::KernelRecord;
use crate::result::tests::sample_result;

/// A worker of `mode` whose kernels run back to back from `start`, each `duration` ns, `gap` ns apart.
pub fn synthetic(mode: &str, workers: u32, index: u32, start: u64, kernels: u64, duration: u64, gap: u64) -> Worker {
    let base = sample_result();
    let mut h = histogram::new_latency_histogram();
    let records: Vec<KernelRecord> = (0..kernels)
        .map(|k| {
            let s = start + k * (duration + gap);
            histogram::record(&mut h, duration + 10_000);
            KernelRecord {
                submit_ns: k * (duration + gap),
                latency_ns: duration + 10_000,
                device_start_ns: s,
                device_end_ns: s + duration,
                sm_count: 132,
            }
        })
        .collect();
    let mut config = base.config.clone();
    config.workers = workers;
    config.worker_index = index;
    Worker {
        source: format!("{mode}-{index}.json"),
        run_id: "run-1".into(),
        mode: mode.into(),
        group: None,
        gpu: base.gpu.clone(),
        host: base.host.clone(),
        config,
        verdict: if mode == "mps" { SharingVerdict::MpsJoined } else { SharingVerdict::NoDaemon },
        status: base.status.clone(),
        worker: index,
        started_unix_ns: base.started_unix_ns,
        finished_unix_ns: base.finished_unix_ns,
        histogram: histogram::Recorded::of(&h),
        records: crate::load::lane::Records::of(&records, start),
        device_stamps: true,
        telemetry: None,
        tenant: None,
        host_conditions: None,
        streaming: None,
    }
}

/// Worker `index` running a foreign command: `requests` requests of `latency` ns back to back on the host clock
/// from `start` (Unix ns), no device stamps, `items` items each.
pub fn command_worker(mode: &str, workers: u32, index: u32, start: u64, requests: u64, latency: u64) -> Worker {
    let mut w = synthetic(mode, workers, index, 0, requests, latency, 0);
    let host_only: Vec<KernelRecord> =
        w.records.iter().map(|r| KernelRecord { device_start_ns: 0, device_end_ns: 0, sm_count: 0, ..r }).collect();
    w.records = crate::load::lane::Records::of(&host_only, start);
    w.device_stamps = false;
    w.config.shape = None;
    w.config.command = Some(vec!["python3".into(), "serve.py".into()]);
    let mut tenant = crate::result::tenant::TenantReport::new(true);
    tenant.requests_in_window = requests;
    tenant.items = Some(requests * 8);
    (tenant.ending, tenant.exit_status) = ("terminated".into(), Some("exit status 0".into()));
    w.tenant = Some(tenant);
    w
}

#[test]
fn time_slicing_shows_no_overlap_and_mps_does() {
    // Two time-sliced workers alternate 1 ms kernels; two MPS workers run theirs side by side, 1.5 ms each.
    let mut ws = vec![
        synthetic("timeslice", 2, 0, 0, 100, 1_000_000, 1_000_000),
        synthetic("timeslice", 2, 1, 1_000_000, 100, 1_000_000, 1_000_000),
        synthetic("mps", 2, 0, 0, 100, 1_500_000, 0),
        synthetic("mps", 2, 1, 0, 100, 1_500_000, 0),
    ];
    ws.push(synthetic("timeslice", 1, 0, 0, 100, 1_000_000, 0));
    let a = analyze(&ws);
    let get = |mode: &str, n: u32| a.groups.iter().find(|g| g.key.mode == mode && g.key.workers == n).unwrap();
    let ts = get("timeslice", 2);
    assert_eq!(ts.overlap_fraction, Some(0.0));
    assert_eq!(ts.kernels, 200);
    assert!((ts.kernels_per_s.value - 1000.0).abs() < 1.0, "{}", ts.kernels_per_s.value);
    let mps = get("mps", 2);
    assert_eq!(mps.overlap_fraction, Some(1.0));
    assert!((mps.mean_concurrency.unwrap() - 2.0).abs() < 1e-9);
    assert!((mps.kernels_per_s.value - 200.0 / 0.15).abs() < 1.0);
    assert!((mps.fairness_jain - 1.0).abs() < 1e-9);
    assert_eq!(mps.verified_workers, 2);
    let c = a.comparisons.iter().find(|c| c.workers == 2).unwrap();
    let r = c.mps_over_timeslice.clone().unwrap();
    assert!((r.spread.median - 1.3333).abs() < 0.01, "{r:?}");
    // One repeat: no interval across repeats, the run's own interval kept beside it.
    assert!(r.spread.across.is_none());
    let w = r.within_run[0];
    assert!(w.ci_low <= w.value && w.value <= w.ci_high);
    // Solo latency is 1.01 ms; MPS workers wait 1.51 ms per kernel.
    let slow = mps.per_worker[0].slowdown_vs_solo.unwrap();
    assert!((slow - 1.51 / 1.01).abs() < 0.01, "{slow}");
    assert!(a.warnings.iter().all(|w| !w.text.contains("different GPUs")));
}

#[test]
fn workers_on_different_gpus_are_not_averaged() {
    let a0 = synthetic("mps", 2, 0, 0, 10, 1000, 0);
    let mut a1 = synthetic("mps", 2, 1, 0, 10, 1000, 0);
    a1.gpu.uuid = "GPU-other".into();
    let a = analyze(&[a0.clone(), a1]);
    assert_eq!(a.groups.len(), 2);
    // Each GPU is its own group; the run is complete because both workers reported, one per GPU.
    assert!(a.groups.iter().all(|g| g.overlap_fraction == Some(0.0) && g.complete && g.workers_reported == 1));
    assert!(a.warnings.iter().any(|w| w.text.contains("2 different GPUs")));
    assert!(a.warnings.iter().all(|w| !w.text.contains("workers reported")));
    // One of the two missing: both GPUs' groups say so, and one warning names the run.
    let a = analyze(&[a0]);
    assert!(!a.groups[0].complete);
    assert_eq!(a.warnings.iter().filter(|w| w.text.contains("1 of 2 workers reported")).count(), 1);
}

#[test]
fn unverified_mps_workers_and_thin_samples_are_warned_about() {
    let mut w = synthetic("mps", 1, 0, 0, 20, 1000, 0);
    w.verdict = SharingVerdict::MpsNotJoined;
    let a = analyze(&[w]);
    assert!(a.warnings.iter().any(|m| m.text.contains("NOT verified as MPS clients")));
    assert!(a.warnings.iter().any(|m| m.text.contains("too few for a distribution-free 95% bound on p99")));
    // 20 kernels of 1 us: too short and too thin to be valid, and said so in the figures and a warning.
    assert!(!a.figures[0].valid());
    assert!(a.figures[0].invalid[0].contains("less than the 0.5 s minimum"), "{:?}", a.figures[0].invalid);
    assert!(a.warnings.iter().any(|m| m.kind == WarningKind::Invalid));
}

/// `synthetic` as repeat `repeat` of its run.
pub fn repeat_of(mut w: Worker, repeat: u32) -> Worker {
    w.config.repeat = repeat;
    w.source = format!("{}-r{repeat}", w.source);
    w
}

#[test]
fn every_repeat_is_summarised_and_the_figures_are_medians_across_them() {
    // Three repeats of 2 time-sliced workers (1 ms kernels alternating) and 2 MPS workers whose kernels take
    // 1.5, 1.4 and 1.6 ms side by side: MPS / time-slicing = 2 ms / d per repeat, paired repeat by repeat.
    let mut ws = Vec::new();
    for (r, mps_ns) in [(0u32, 1_500_000u64), (1, 1_400_000), (2, 1_600_000)] {
        ws.push(repeat_of(synthetic("timeslice", 2, 0, 0, 400, 1_000_000, 1_000_000), r));
        ws.push(repeat_of(synthetic("timeslice", 2, 1, 1_000_000, 400, 1_000_000, 1_000_000), r));
        ws.push(repeat_of(synthetic("mps", 2, 0, 0, 400, mps_ns, 0), r));
        ws.push(repeat_of(synthetic("mps", 2, 1, 0, 400, mps_ns, 0), r));
    }
    let a = analyze(&ws);
    assert_eq!(a.groups.len(), 6, "one summary per group and repeat");
    assert!(a.groups.iter().all(|g| g.complete && g.invalid.is_empty()), "{:?}", a.warnings);
    let mps = a.figures.iter().find(|f| f.key.mode == "mps").unwrap();
    assert_eq!(mps.repeats, [0, 1, 2]);
    let expected = [2.0 / 1.5e-3, 2.0 / 1.4e-3, 2.0 / 1.6e-3];
    for (got, want) in mps.throughput.values.iter().zip(expected) {
        assert!((got / want - 1.0).abs() < 0.01, "{got} vs {want}");
    }
    assert!((mps.throughput.median / expected[0] - 1.0).abs() < 0.01);
    let r = a.comparisons[0].mps_over_timeslice.as_ref().unwrap();
    assert_eq!(r.repeats, [0, 1, 2]);
    assert_eq!(r.within_run.len(), 3);
    assert_eq!(r.spread.direction(1.0), repeats::Direction::Above);
    let i = r.spread.across.unwrap();
    assert!(i.low > 1.0 && i.low < r.spread.min && i.high > r.spread.max, "{r:?}");
    // The p99 ratio follows the kernel time of each repeat (1.51 / 1.01 ms and so on).
    let p99 = a.comparisons[0].p99_mps_over_timeslice.as_ref().unwrap();
    assert_eq!(p99.spread.repeats(), 3);
    assert!(p99.spread.min > 1.3 && p99.spread.max < 1.7, "{p99:?}");
}

#[test]
fn group_order_does_not_change_results() {
    let ws = vec![synthetic("mps", 2, 0, 0, 50, 1000, 10), synthetic("mps", 2, 1, 5, 50, 1000, 10)];
    let mut rev = ws.clone();
    rev.reverse();
    let (a, b) = (analyze(&ws), analyze(&rev));
    assert_eq!(serde_json::to_string(&a.groups).unwrap(), serde_json::to_string(&b.groups).unwrap());
}

#[test]
fn command_workers_are_timed_on_the_host_clock_and_their_overlap_is_not_shown_as_zero() {
    let start = 1_764_000_000_000_000_000;
    let mut silent = command_worker("mps", 3, 2, start, 0, 1);
    silent.tenant.as_mut().unwrap().reports = false;
    let ws = vec![
        command_worker("mps", 3, 0, start, 100, 10_000_000), // 100 requests of 10 ms: 1 s
        command_worker("mps", 3, 1, start, 50, 20_000_000),  // 50 of 20 ms: 1 s
        silent,
    ];
    let a = analyze(&ws);
    let g = &a.groups[0];
    assert_eq!(g.clock, Clock::Host);
    assert_eq!((g.overlap_fraction, g.busy_ns, g.mean_concurrency), (None, None, None));
    assert_eq!(g.kernels, 150);
    assert!((g.kernels_per_s.value - 150.0).abs() < 1.0, "{}", g.kernels_per_s.value);
    assert!((g.items_per_s.unwrap() - 1200.0).abs() < 10.0);
    assert_eq!(g.tokens_per_s, None);
    // The silent neighbour is listed with how it ended, and left out of fairness (both reporters got 1 s).
    assert!(g.per_worker[2].neighbour.as_deref().unwrap().contains("terminated (exit status 0)"));
    assert!(g.per_worker[0].mean_sm_count.is_none());
    assert!(g.fairness_jain < 1.0 && g.fairness_jain > 0.85, "{}", g.fairness_jain);
}

#[test]
fn figures_above_the_gpus_own_peak_are_impossible() {
    // The sample result's H100: 132 SMs x 128 FP32 lanes x 2 x 1.98 GHz = 66.9 TFLOP/s.
    let gpu = sample_result().gpu;
    let why = figures::above_peak(Some(153e15), &gpu).unwrap();
    assert!(why.contains("153000.0 TFLOP/s is above the GPU's own FP32 peak of 66.9 TFLOP/s"), "{why}");
    assert_eq!(figures::above_peak(Some(64e12), &gpu), None);
    assert_eq!(figures::above_peak(None, &gpu), None);
    let unknown = crate::result::GpuIdentity { clock_khz: None, ..gpu };
    assert_eq!(figures::above_peak(Some(153e15), &unknown), None, "no peak recorded: nothing to judge against");
}

#[test]
fn a_worker_throttled_by_its_cpu_limit_flags_its_group_as_severe() {
    use crate::cgroup::{conditions_between, Snapshot};
    let start = Snapshot { version: 2, cpu_quota: Some(0.5), throttled_us: Some(0), ..Default::default() };
    let end = Snapshot { throttled_us: Some(300_000), ..start.clone() };
    let mut ws = vec![synthetic("mps", 2, 0, 0, 400, 1_500_000, 0), synthetic("mps", 2, 1, 0, 400, 1_500_000, 0)];
    ws[1].host_conditions = Some(conditions_between(&start, &end, 0.6, None, None));
    let a = analyze(&ws);
    let flagged: Vec<&Warning> = a.warnings.iter().filter(|w| w.kind == WarningKind::Conditions).collect();
    assert_eq!(flagged.len(), 1, "{:?}", a.warnings);
    assert!(flagged[0].text.contains("worker 1: throttled by its CPU limit (0.5 CPU) for 50%"), "{}", flagged[0].text);
    assert!(flagged[0].kind.severe() && flagged[0].subject.starts_with("mps x2 worker 1"));
}

#[test]
fn a_streaming_groups_ttft_and_tpot_are_set_against_its_solo_run() {
    use crate::result::histogram::{new_latency_histogram, record, Recorded};
    let streamed = |mut w: Worker, ttft_ms: u64, tpot_ms: u64| {
        let (mut t, mut p) = (new_latency_histogram(), new_latency_histogram());
        for _ in 0..100 {
            record(&mut t, ttft_ms * 1_000_000);
            record(&mut p, tpot_ms * 1_000_000);
        }
        w.streaming = Some(crate::load::Streaming { ttft: Recorded::of(&t), tpot: Some(Recorded::of(&p)) });
        w
    };
    let solo = streamed(synthetic("timeslice", 1, 0, 0, 100, 1_000_000, 0), 50, 20);
    let shared: Vec<Worker> = (0..2).map(|i| streamed(synthetic("mps", 2, i, 0, 100, 1_000_000, 0), 150, 25)).collect();
    let mut all = vec![solo];
    all.extend(shared);
    let a = analyze(&all);
    let g = a.groups.iter().find(|g| g.key.workers == 2).unwrap();
    assert!((g.ttft_p99_vs_solo.unwrap() - 3.0).abs() < 0.01, "{:?}", g.ttft_p99_vs_solo);
    assert!((g.tpot_p99_vs_solo.unwrap() - 1.25).abs() < 0.01, "{:?}", g.tpot_p99_vs_solo);
    let plain = analyze(&[synthetic("mps", 1, 0, 0, 100, 1_000_000, 0)]);
    assert_eq!(plain.groups[0].ttft_p99_vs_solo, None);
}
