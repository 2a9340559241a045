//! sharebench's own workload: CUDA kernels in a closed or open loop on one or more lanes (streams), each kernel
//! stamped on the device. Prepares by opening the GPU with the chosen way of waiting, verifying the mode and
//! warming up; measures every lane from the common start; hands back each lane's records and histogram.

use super::{mode, Measured, Prepared, Workload};
use crate::cli::{Mode, MpsControlArgs, SyncChoice};
use crate::error::{Error, Result};
use crate::gpu::{Gpu, KernelLane, Waiting};
use crate::result::{histogram, records, LaneResult};
use crate::worker::{self, LaneRecording, LoopPlan};
use crate::workload::KernelShape;
use crate::{host, units};

/// How the kernel worker is set up.
pub struct KernelSettings {
    pub mode: Mode,
    pub control: MpsControlArgs,
    pub gpu: u32,
    /// The kernel, from its flags and the GPU's SM count.
    pub shape: Box<dyn Fn(u32) -> Result<KernelShape>>,
    pub plan: LoopPlan,
    /// Each lane's worker index in the result (one lane, or a stream each in the ceiling).
    pub labels: Vec<u32>,
    pub sync: SyncChoice,
    /// Device memory to take and hold before measuring (`--hold-memory`).
    pub hold_memory: Option<crate::mps::memory::MemoryAsk>,
}

/// The kernel workload, from set-up to its lanes' recordings.
pub struct Kernels {
    settings: KernelSettings,
    gpu: Option<Gpu>,
    lanes: Vec<KernelLane>,
    recordings: Vec<LaneRecording>,
    /// The context's memory once a `--hold-memory` hold was taken.
    memory: Option<crate::result::memory::ContextMemory>,
}

impl Kernels {
    pub fn new(settings: KernelSettings) -> Kernels {
        Kernels { settings, gpu: None, lanes: vec![], recordings: vec![], memory: None }
    }
}

/// CPU a spinning worker needs beside one CPU per lane (its telemetry, read-backs and barrier).
pub const SPIN_HEADROOM_CPUS: f64 = 0.5;

/// How to wait, for `choice` with this cgroup's CPU quota (CPUs; `None`: none) and `lanes` waiting threads,
/// and why. `auto` spins where every lane has a CPU of its own and [`SPIN_HEADROOM_CPUS`] to spare, and blocks
/// where the quota is smaller: a spinning thread spends its quota polling and is throttled, and then measures
/// the quota instead of the GPU. Measured on an H200 (results/h200/worker-pod): spinning costs 1.01 CPU per
/// lane; blocking 0.04-0.09 CPU, and adds about 86 us to a 0.6 ms kernel's latency when it runs alone.
pub fn resolve_waiting(choice: SyncChoice, quota: Option<f64>, lanes: u32) -> (Waiting, String) {
    match choice {
        SyncChoice::Spin => (Waiting::Spin, "spin (--sync)".into()),
        SyncChoice::Yield => (Waiting::Yield, "yield (--sync)".into()),
        SyncChoice::Blocking => (Waiting::Blocking, "blocking (--sync)".into()),
        SyncChoice::Auto => match quota {
            Some(q) if q < lanes as f64 + SPIN_HEADROOM_CPUS => (
                Waiting::Blocking,
                format!(
                    "blocking (auto: CPU quota {q} below {} CPU to spin {lanes} stream(s))",
                    lanes as f64 + SPIN_HEADROOM_CPUS
                ),
            ),
            Some(q) => (Waiting::Spin, format!("spin (auto: CPU quota {q} covers {lanes} spinning stream(s))")),
            None => (Waiting::Spin, "spin (auto: no CPU quota)".into()),
        },
    }
}

impl Workload for Kernels {
    fn prepare(&mut self) -> Result<super::Prepared> {
        let s = &self.settings;
        let quota = crate::cgroup::read().and_then(|c| c.cpu_quota);
        let (waiting, why) = resolve_waiting(s.sync, quota, s.labels.len() as u32);
        let mut gpu = Gpu::open_waiting(s.gpu, Some(waiting))?;
        let in_effect = gpu.waiting_in_effect().unwrap_or("unknown");
        let sync = match in_effect == waiting.label() {
            true => why,
            false => format!("{why}; the driver reports {in_effect}"),
        };
        let shape = (s.shape)(gpu.identity().sm_count)?;
        let (sharing, memory) = mode::verify_mode(s.mode, &s.control, &gpu)?;
        if let Some(memory) = memory {
            gpu.set_context_memory(memory);
        }
        let capacity = s.plan.stamp_capacity();
        self.lanes = s.labels.iter().map(|_| gpu.lane(shape, capacity)).collect::<Result<Vec<_>>>()?;
        for lane in &self.lanes {
            worker::warm_up(lane, &s.plan)?;
        }
        let prepared =
            Prepared { gpu: gpu.identity().clone(), sharing, shape: Some(shape), sync: Some(sync), ready: true };
        self.gpu = Some(gpu);
        Ok(prepared)
    }

    fn measure(&mut self, start_unix_ns: u64) -> Result<u64> {
        // A hold is taken when the window opens, after every peer made its context and buffers: a neighbour
        // that grows, not one that was there first (the order of two Pods' start-ups is not the test).
        if let (Some(ask), Some(gpu)) = (self.settings.hold_memory, self.gpu.as_mut()) {
            let start = crate::rendezvous::start_instant(start_unix_ns);
            std::thread::sleep(start.saturating_duration_since(std::time::Instant::now()));
            let held = gpu.hold_memory(ask);
            let mut memory = gpu.identity().context_memory.clone();
            if let Some(m) = memory.as_mut() {
                m.held = Some(held);
                eprintln!("sharebench run: memory: this context {}", crate::mps::memory::describe(m, Some(1)));
            }
            self.memory = memory;
        }
        let start = crate::rendezvous::start_instant(start_unix_ns);
        self.recordings = worker::run_lanes(&mut self.lanes, &self.settings.labels, &self.settings.plan, start);
        Ok(host::unix_now_ns())
    }

    fn finish(self: Box<Self>, _worker: u32) -> Result<Measured> {
        let labels = &self.settings.labels;
        let empty = || LaneRecording::empty(host::unix_now_ns());
        let recordings: Vec<LaneRecording> = match self.recordings.is_empty() {
            true => labels.iter().map(|_| empty()).collect(),
            false => self.recordings,
        };
        let lanes =
            recordings.iter().zip(labels).map(|(rec, &label)| lane_result(label, rec)).collect::<Result<_>>()?;
        let problems = recordings.iter().filter_map(|r| r.error.as_ref().map(|e| e.problem.clone())).collect();
        let gpu_name = self.gpu.as_ref().map(|g| g.identity().name.clone()).unwrap_or_default();
        let summary =
            recordings.iter().zip(labels).map(|(rec, label)| summarize(self.settings.mode, *label, &gpu_name, rec));
        let memory = self.memory;
        Ok(Measured { lanes, tenant: None, sharing: None, problems, summary: summary.collect(), memory })
    }
}

fn lane_result(worker: u32, rec: &LaneRecording) -> Result<LaneResult> {
    let encoded = records::encode(&rec.records, rec.host_base_unix_ns)
        .map_err(|e| Error::new(format!("encoding records: {e}")))?;
    Ok(LaneResult {
        worker,
        kernels: encoded.count,
        latency_histogram: histogram::to_base64(&rec.histogram),
        records: encoded,
        device_stamps: true,
    })
}

/// One line per lane, so a person watching sees what was measured.
fn summarize(mode: Mode, worker: u32, gpu: &str, rec: &LaneRecording) -> String {
    let h = &rec.histogram;
    let quantile = |q| units::format_ns(if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 });
    format!(
        "{} worker {worker} on {gpu}: {} kernels | latency p50 {} p99 {} max {}",
        mode.label(),
        rec.records.len(),
        quantile(0.5),
        quantile(0.99),
        units::format_ns(h.max() as f64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_spins_with_a_cpu_per_stream_and_blocks_under_a_smaller_quota() {
        assert_eq!(resolve_waiting(SyncChoice::Auto, None, 1).0, Waiting::Spin);
        assert_eq!(resolve_waiting(SyncChoice::Auto, Some(1.5), 1).0, Waiting::Spin);
        // A Guaranteed Pod's limits.cpu 1: spinning would take all of it, the read-backs and telemetry none.
        assert_eq!(resolve_waiting(SyncChoice::Auto, Some(1.0), 1).0, Waiting::Blocking);
        let (w, why) = resolve_waiting(SyncChoice::Auto, Some(0.5), 1);
        assert_eq!(w, Waiting::Blocking);
        assert!(why.contains("CPU quota 0.5 below 1.5 CPU"), "{why}");
        assert_eq!(resolve_waiting(SyncChoice::Auto, Some(4.0), 4).0, Waiting::Blocking);
        assert_eq!(resolve_waiting(SyncChoice::Auto, Some(4.5), 4).0, Waiting::Spin);
        // An explicit choice is kept whatever the quota.
        assert_eq!(resolve_waiting(SyncChoice::Spin, Some(0.1), 1), (Waiting::Spin, "spin (--sync)".into()));
        assert_eq!(resolve_waiting(SyncChoice::Blocking, None, 1).0, Waiting::Blocking);
        assert_eq!(resolve_waiting(SyncChoice::Yield, None, 1).0, Waiting::Yield);
    }
}
