//! SM share asked against share got (pure): for MPS workers that ran with an active thread percentage (a Pod's
//! `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`, or a replica count's derived share), what each Pod did against what the
//! same kernel does alone on the whole GPU. A lone Pod at its percentage shows what the percentage costs when
//! the GPU is otherwise idle (the device plugin derives it from the replica count: k8s-device-plugin #1548,
//! #1494); a Pod beside others shows what it got of the GPU against what it asked for.

use crate::load::Worker;
use serde::Serialize;

/// One kind of Pod (run, GPU, group, percentage, Pods in the run) against the same kernel alone at 100%.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ShareRow {
    pub run_id: String,
    pub gpu_uuid: String,
    /// The scenario group, where there was one.
    pub group: Option<String>,
    pub kernel: String,
    /// Worker processes in the run (1: a lone Pod).
    pub workers: u32,
    /// The active thread percentage the Pods asked for.
    pub asked_percent: u32,
    /// SMs each Pod's context saw, of the device's.
    pub context_sms: u32,
    pub device_sms: u32,
    /// Mean kernels/s of one such Pod, over its workers and repeats.
    pub per_pod_per_s: f64,
    /// Kernels/s of the same kernel alone on the whole GPU (median of the lone runs at 100%).
    pub alone_full_per_s: f64,
    /// `per_pod_per_s` over `alone_full_per_s`: the share of a whole GPU's work one Pod got.
    pub share_got: f64,
    /// What the SMs it saw allow a kernel of equal blocks, each SM's blocks in turn: rounds of blocks on the
    /// whole GPU over rounds on its SMs (132 blocks on 32 of 132 SMs: 1 round against 5, 20%), where the grid
    /// is known. A share got near this is the percentage's cost, not a neighbour's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm_bound: Option<f64>,
    pub pods_measured: u32,
}

/// A kind of Pod: run, GPU, group, kernel, workers in the run, asked percentage.
type Kind = (String, String, Option<String>, String, u32, u32);

fn per_s(w: &Worker) -> Option<f64> {
    let window = w.finished_unix_ns.saturating_sub(w.started_unix_ns) as f64 / 1e9;
    (window > 0.0 && !w.records.is_empty()).then(|| w.records.len() as f64 / window)
}

fn asked(w: &Worker) -> Option<u32> {
    w.config.mps_active_thread_percentage
}

/// A run on the whole GPU: no percentage, or 100%.
fn whole_gpu(w: &Worker) -> bool {
    asked(w).is_none_or(|p| p >= 100)
}

/// Rounds of equal blocks on the device's SMs over rounds on the context's (`None` without a grid or SMs).
pub fn sm_bound(blocks: u32, context_sms: u32, device_sms: u32) -> Option<f64> {
    (blocks > 0 && context_sms > 0 && device_sms > 0)
        .then(|| blocks.div_ceil(device_sms) as f64 / blocks.div_ceil(context_sms) as f64)
}

/// The rows, for every kind of Pod that asked for a percentage (100% included, to show what it costs: nothing)
/// and has a lone whole-GPU run of its kernel on its GPU to set it against.
pub fn shares(all: &[Worker]) -> Vec<ShareRow> {
    let kernel_of = |w: &Worker| w.config.shape.map(|s| s.describe());
    let mut kinds: std::collections::BTreeMap<Kind, Vec<&Worker>> = Default::default();
    for w in all.iter().filter(|w| w.mode == "mps" && w.status.complete) {
        let (Some(pct), Some(kernel)) = (asked(w), kernel_of(w)) else { continue };
        let key = (w.run_id.clone(), w.gpu.uuid.clone(), w.group.clone(), kernel, w.config.workers, pct);
        kinds.entry(key).or_default().push(w);
    }
    kinds
        .into_iter()
        .filter_map(|((run_id, gpu_uuid, group, kernel, workers, asked_percent), members)| {
            let alone_runs = alone_at_full(all, &gpu_uuid, &kernel, &kernel_of);
            let mut alone: Vec<f64> = alone_runs.iter().filter_map(|w| per_s(w)).collect();
            alone.sort_by(f64::total_cmp);
            let alone_full_per_s = *alone.get(alone.len().checked_sub(1)? / 2)?;
            let rates: Vec<f64> = members.iter().filter_map(|w| per_s(w)).collect();
            let per_pod_per_s = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
            // Under a percentage a context's SM count attribute is its own share: the device's comes from the
            // whole-GPU runs.
            let device_sms = alone_runs.iter().map(|w| w.gpu.sm_count).max().unwrap_or(members[0].gpu.sm_count);
            let context_sms = members[0].gpu.context_sm_count;
            let blocks = members[0].config.shape.map_or(0, |s| s.blocks);
            Some(ShareRow {
                run_id,
                gpu_uuid,
                group,
                kernel,
                workers,
                asked_percent,
                context_sms,
                device_sms,
                per_pod_per_s,
                alone_full_per_s,
                share_got: per_pod_per_s / alone_full_per_s,
                sm_bound: sm_bound(blocks, context_sms, device_sms),
                pods_measured: rates.len() as u32,
            })
        })
        .collect()
}

/// Every complete lone run (one worker, on the whole GPU) of `kernel` on `gpu_uuid`.
fn alone_at_full<'a>(
    all: &'a [Worker],
    gpu_uuid: &str,
    kernel: &str,
    kernel_of: &dyn Fn(&Worker) -> Option<String>,
) -> Vec<&'a Worker> {
    all.iter()
        .filter(|w| w.config.workers == 1 && w.status.complete && whole_gpu(w) && w.gpu.uuid == gpu_uuid)
        .filter(|w| kernel_of(w).as_deref() == Some(kernel))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::synthetic;

    /// A worker that did `kernels` in a 1 s window, at `pct`% of the SMs.
    fn at(mode: &str, workers: u32, index: u32, kernels: u64, pct: Option<u32>) -> Worker {
        let mut w = synthetic(mode, workers, index, 0, kernels, 1000, 0);
        w.started_unix_ns = 0;
        w.finished_unix_ns = 1_000_000_000;
        w.config.mps_active_thread_percentage = pct;
        w.gpu.context_sm_count = pct.map_or(132, |p| 132 * p / 100);
        w
    }

    #[test]
    fn a_pods_throughput_is_set_against_the_same_kernel_alone_on_the_whole_gpu() {
        let mut lone = at("mps", 1, 0, 300, Some(25));
        lone.run_id = "lone-25".into();
        let mut full = at("timeslice", 1, 0, 1000, None);
        full.run_id = "lone-100".into();
        let mut shared: Vec<Worker> = (0..4).map(|i| at("mps", 4, i, 200 + 20 * i as u64, Some(50))).collect();
        for w in &mut shared {
            (w.run_id, w.group) = ("shared".into(), Some("batch".into()));
        }
        let mut all = vec![lone, full];
        all.extend(shared);
        let rows = shares(&all);
        assert_eq!(rows.len(), 2, "{rows:#?}");
        let lone = rows.iter().find(|r| r.workers == 1).unwrap();
        assert_eq!((lone.asked_percent, lone.context_sms, lone.alone_full_per_s), (25, 33, 1000.0));
        assert!((lone.share_got - 0.3).abs() < 1e-9, "{lone:?}");
        let beside = rows.iter().find(|r| r.workers == 4).unwrap();
        assert_eq!((beside.group.as_deref(), beside.pods_measured), (Some("batch"), 4));
        assert!((beside.per_pod_per_s - 230.0).abs() < 1e-9 && (beside.share_got - 0.23).abs() < 1e-9);
    }

    #[test]
    fn no_row_without_a_percentage_or_a_lone_full_gpu_run_to_compare_with() {
        assert!(shares(&[at("mps", 1, 0, 300, Some(25))]).is_empty(), "nothing to set it against");
        assert!(shares(&[at("mps", 1, 0, 300, None), at("timeslice", 1, 0, 1000, None)]).is_empty());
        let rows = shares(&[at("mps", 1, 0, 990, Some(100)), at("timeslice", 1, 0, 1000, None)]);
        assert_eq!(rows.len(), 1, "100% is a row: what asking for all of it costs");
        assert_eq!(rows[0].alone_full_per_s, 990.0, "the (lower) median of the whole-GPU runs, itself among them");
    }

    #[test]
    fn the_device_sms_come_from_the_whole_gpu_run_and_the_sm_bound_counts_rounds_of_blocks() {
        let mut lone = at("mps", 1, 0, 205, Some(25));
        lone.gpu.sm_count = 32; // a context under a percentage sees its own share as the device's SM count
        lone.gpu.context_sm_count = 32;
        let rows = shares(&[lone, at("timeslice", 1, 0, 1000, None)]);
        assert_eq!((rows[0].context_sms, rows[0].device_sms), (32, 132));
        assert_eq!(rows[0].sm_bound, Some(0.2), "132 blocks: 1 round on 132 SMs, 5 on 32");
        assert_eq!(sm_bound(132, 66, 132), Some(0.5));
        assert_eq!(sm_bound(8, 33, 132), Some(1.0), "a small grid loses nothing to a smaller share");
        assert_eq!(sm_bound(0, 33, 132), None);
    }
}
