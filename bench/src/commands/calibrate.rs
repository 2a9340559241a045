//! `sharebench calibrate`: this GPU's ceilings and sharebench's own cost, measured in one run.
//!
//! - device-to-device copy bandwidth (`cuMemcpyDtoD`) and the `stream` kernel's bandwidth as a share of it;
//! - the `fma` kernel's FP32 rate as a share of the peak computed from SMs x FP32 lanes x 2 x clock;
//! - what stamping costs an `fma` kernel, and what recording costs the `tiny` closed loop compared with a bare
//!   launch-and-synchronize loop;
//! - what the telemetry sampler (NVML, every 200 ms on its own thread) costs that recorded `tiny` loop.
//!
//! These are the numbers that say whether the kernels are fit to measure sharing with.

use crate::cli::CalibrateArgs;
use crate::error::{Error, Result};
use crate::gpu::{self, Gpu, KernelLane};
use crate::result::GpuIdentity;
use crate::telemetry;
use crate::units::{format_ns, format_si};
use crate::worker::{self, LoopPlan, Stop};
use crate::workload::{self, KernelKind, KernelShape};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
pub struct Calibration {
    pub gpu: GpuIdentity,
    pub copy_bytes_per_s: f64,
    pub stream_bytes_per_s: f64,
    pub stream_fraction_of_copy: f64,
    pub fp32_peak_flops: Option<f64>,
    pub fma_flops: f64,
    pub fma_fraction_of_peak: Option<f64>,
    pub stamping_overhead_fma: f64,
    pub tiny_minimal_round_trip_ns: f64,
    pub tiny_recorded_round_trip_ns: f64,
    pub tiny_recorded_over_minimal: f64,
    /// The recorded `tiny` loop while the telemetry sampler runs (`crate::telemetry`), and its cost.
    pub tiny_recorded_with_telemetry_ns: f64,
    pub telemetry_overhead: f64,
    /// Where the sampler's telemetry came from (`nvml`, or why not).
    pub telemetry_source: String,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median device duration (ns) of `n` recorded kernels on `lane`.
fn median_device_ns(lane: &mut KernelLane, n: u64) -> Result<f64> {
    let plan = LoopPlan {
        stop: Stop::AfterKernels(n),
        warmup: 2,
        fault_after: None,
        arrivals: crate::arrivals::Arrivals::Closed,
    };
    worker::warm_up(lane, &plan)?;
    let rec = worker::measure_loop(lane, &plan, Instant::now(), 0);
    if let Some(e) = rec.error {
        return Err(e);
    }
    Ok(median(rec.records.iter().map(|r| r.device_duration_ns() as f64).collect()))
}

/// Median host round trip (ns) of `n` launches with or without a stamp slot.
fn median_host_ns(lane: &KernelLane, n: usize, stamped: bool) -> Result<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        lane.launch(stamped.then_some(0))?;
        lane.synchronize()?;
        times.push(t.elapsed().as_nanos() as f64);
    }
    Ok(median(times))
}

pub fn measure(gpu: &mut Gpu) -> Result<Calibration> {
    let id = gpu.identity().clone();
    let full_grid = id.sm_count * 8;
    let copy_bytes: u64 = 1 << 30;
    let copy_bytes_per_s = gpu.copy_bandwidth(copy_bytes as usize, 20)?;

    let stream_shape =
        KernelShape { kernel: KernelKind::Stream, blocks: full_grid, threads: 256, iters: 0, bytes: copy_bytes };
    let mut stream_lane = gpu.lane(stream_shape, 32)?;
    let stream_bytes_per_s = stream_shape.bytes_per_launch() as f64 / (median_device_ns(&mut stream_lane, 20)? / 1e9);
    drop(stream_lane);

    let fma_shape = KernelShape { kernel: KernelKind::Fma, blocks: full_grid, threads: 256, iters: 20_000, bytes: 0 };
    let mut fma_lane = gpu.lane(fma_shape, 32)?;
    let fma_flops = fma_shape.flop_per_launch() as f64 / (median_device_ns(&mut fma_lane, 10)? / 1e9);
    let fp32_peak_flops = match (id.fp32_lanes_per_sm, id.clock_khz) {
        (Some(lanes), Some(clock)) => Some(workload::fp32_peak_flops(id.sm_count, lanes, clock)),
        _ => None,
    };
    let unstamped = median_host_ns(&fma_lane, 15, false)?;
    let stamped = median_host_ns(&fma_lane, 15, true)?;
    drop(fma_lane);

    let tiny_shape = KernelShape { kernel: KernelKind::Tiny, blocks: 1, threads: 32, iters: 0, bytes: 0 };
    let n = 20_000u64;
    let mut tiny_lane = gpu.lane(tiny_shape, n as usize)?;
    let plan = LoopPlan {
        stop: Stop::AfterKernels(n),
        warmup: 1000,
        fault_after: None,
        arrivals: crate::arrivals::Arrivals::Closed,
    };
    worker::warm_up(&tiny_lane, &plan)?;
    let (mut minimal, mut recorded, mut sampled) = (Vec::new(), Vec::new(), Vec::new());
    let mut telemetry_source = String::new();
    let recorded_loop = |lane: &mut KernelLane| -> Result<f64> {
        let t = Instant::now();
        let rec = worker::measure_loop(lane, &plan, t, 0);
        if let Some(e) = rec.error {
            return Err(e);
        }
        Ok(t.elapsed().as_nanos() as f64 / n as f64)
    };
    // Alternating pairs, so that drift of the GPU or the host falls on both sides alike; the sampler's cost is
    // the median of the pairs' ratios.
    for _ in 0..15 {
        minimal.push(gpu::minimal_round_trip(&tiny_lane, n as u32)?.as_nanos() as f64 / n as f64);
        recorded.push(recorded_loop(&mut tiny_lane)?);
        let sampler = telemetry::Sampler::start(&id.uuid, telemetry::INTERVAL, "calibrate");
        sampler.begin(Instant::now());
        sampled.push(recorded_loop(&mut tiny_lane)?);
        telemetry_source = sampler.finish().source;
    }
    let pair_ratios: Vec<f64> = sampled.iter().zip(&recorded).map(|(s, r)| s / r).collect();
    let (tiny_minimal, tiny_recorded, tiny_sampled) = (median(minimal), median(recorded), median(sampled));
    Ok(Calibration {
        gpu: id,
        copy_bytes_per_s,
        stream_bytes_per_s,
        stream_fraction_of_copy: stream_bytes_per_s / copy_bytes_per_s,
        fp32_peak_flops,
        fma_flops,
        fma_fraction_of_peak: fp32_peak_flops.map(|p| fma_flops / p),
        stamping_overhead_fma: stamped / unstamped - 1.0,
        tiny_minimal_round_trip_ns: tiny_minimal,
        tiny_recorded_round_trip_ns: tiny_recorded,
        tiny_recorded_over_minimal: tiny_recorded / tiny_minimal,
        tiny_recorded_with_telemetry_ns: tiny_sampled,
        telemetry_overhead: median(pair_ratios) - 1.0,
        telemetry_source,
    })
}

pub fn render(c: &Calibration) -> String {
    let pct = |f: f64| format!("{:.1}%", f * 100.0);
    let mut out = format!(
        "GPU {} ({}), {} SMs, driver {}\n",
        c.gpu.name,
        c.gpu.uuid,
        c.gpu.sm_count,
        c.gpu.driver_version.as_deref().unwrap_or("?")
    );
    out += &format!("  copy bandwidth (cuMemcpyDtoD)      {}B/s\n", format_si(c.copy_bytes_per_s));
    out += &format!(
        "  stream kernel                      {}B/s  ({} of copy)\n",
        format_si(c.stream_bytes_per_s),
        pct(c.stream_fraction_of_copy)
    );
    match (c.fp32_peak_flops, c.fma_fraction_of_peak) {
        (Some(peak), Some(frac)) => {
            out += &format!(
                "  fma kernel                         {}FLOP/s  ({} of {}FLOP/s FP32 peak)\n",
                format_si(c.fma_flops),
                pct(frac),
                format_si(peak)
            )
        }
        _ => {
            out += &format!(
                "  fma kernel                         {}FLOP/s  (peak unknown for this GPU)\n",
                format_si(c.fma_flops)
            )
        }
    }
    out += &format!("  stamping overhead on fma           {}\n", pct(c.stamping_overhead_fma));
    out += &format!(
        "  tiny round trip: bare {}, recorded {}  ({:.3}x)\n",
        format_ns(c.tiny_minimal_round_trip_ns),
        format_ns(c.tiny_recorded_round_trip_ns),
        c.tiny_recorded_over_minimal
    );
    out += &format!(
        "  telemetry sampler on tiny          {} ({} with it; telemetry: {})\n",
        pct(c.telemetry_overhead),
        format_ns(c.tiny_recorded_with_telemetry_ns),
        c.telemetry_source
    );
    out
}

pub fn execute(args: &CalibrateArgs) -> Result<i32> {
    let mut gpu = Gpu::open(args.gpu)?;
    let started = Instant::now();
    let c = measure(&mut gpu)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&c).map_err(|e| Error::new(e.to_string()))?);
    } else {
        print!("{}", render(&c));
        eprintln!("(measured in {:.1} s)", (started.elapsed() + Duration::ZERO).as_secs_f64());
    }
    Ok(0)
}
