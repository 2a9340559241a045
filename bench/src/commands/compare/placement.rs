//! Where the workers of a compare run go when it spans GPUs (pure): worker i on the (i mod n)-th GPU of
//! `--gpus`, the multi-stream ceiling as one process per GPU with that GPU's share of the streams, and which
//! devices a private MPS daemon is given.

/// The GPUs of a run, as CUDA ordinals in `--gpus` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub gpus: Vec<u32>,
}

/// One process of the multi-stream ceiling: the GPU's position in `--gpus`, its first lane, its streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamsProcess {
    pub position: usize,
    pub first_lane: u32,
    pub streams: u32,
}

impl Placement {
    /// Position in `--gpus` of the GPU that worker `index` runs on.
    pub fn position_of(&self, index: u32) -> usize {
        index as usize % self.gpus.len()
    }

    /// Whether worker `index` is the first on its GPU: it samples that GPU's telemetry (one sampler per GPU).
    pub fn first_on_its_gpu(&self, index: u32) -> bool {
        (index as usize) < self.gpus.len()
    }

    /// The ceiling for `workers` workers: per GPU as many streams as workers land there, lanes numbered on.
    pub fn streams(&self, workers: u32) -> Vec<StreamsProcess> {
        let mut first_lane = 0;
        (0..self.gpus.len())
            .filter_map(|position| {
                let streams = (0..workers).filter(|&i| self.position_of(i) == position).count() as u32;
                let p = StreamsProcess { position, first_lane, streams };
                first_lane += streams;
                (streams > 0).then_some(p)
            })
            .collect()
    }
}

/// CUDA_VISIBLE_DEVICES for a daemon serving `ordinals`: the ordinals themselves, or, when this process runs with
/// CUDA_VISIBLE_DEVICES set (`parent`), the entries they index there (so the daemon serves the same GPUs).
pub fn visible_devices(parent: Option<&str>, ordinals: &[u32]) -> Result<String, String> {
    let entries: Option<Vec<&str>> =
        parent.filter(|p| !p.trim().is_empty()).map(|p| p.split(',').map(str::trim).collect());
    let picked: Result<Vec<String>, String> = ordinals
        .iter()
        .map(|&o| match &entries {
            None => Ok(o.to_string()),
            Some(list) => list.get(o as usize).map(|e| e.to_string()).ok_or_else(|| {
                format!(
                    "GPU {o} is not visible: CUDA_VISIBLE_DEVICES={} lists {} GPUs",
                    parent.unwrap_or(""),
                    list.len()
                )
            }),
        })
        .collect();
    Ok(picked?.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_worker_on_each_gpu_samples_it() {
        let p = Placement { gpus: vec![0, 1] };
        let sampling: Vec<u32> = (0..4).filter(|&i| p.first_on_its_gpu(i)).collect();
        assert_eq!(sampling, vec![0, 1]);
        assert_eq!(sampling.iter().map(|&i| p.position_of(i)).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn workers_alternate_between_gpus_and_streams_follow_them() {
        let p = Placement { gpus: vec![0, 1] };
        let positions: Vec<usize> = (0..5).map(|i| p.position_of(i)).collect();
        assert_eq!(positions, [0, 1, 0, 1, 0]);
        assert_eq!(
            p.streams(5),
            [
                StreamsProcess { position: 0, first_lane: 0, streams: 3 },
                StreamsProcess { position: 1, first_lane: 3, streams: 2 }
            ]
        );
        // One worker on two GPUs: the second GPU gets no streams process.
        assert_eq!(p.streams(1).len(), 1);
        let one = Placement { gpus: vec![3] };
        assert_eq!(one.streams(4), [StreamsProcess { position: 0, first_lane: 0, streams: 4 }]);
    }

    #[test]
    fn a_daemon_sees_the_gpus_this_process_means() {
        assert_eq!(visible_devices(None, &[0, 1]).unwrap(), "0,1");
        assert_eq!(visible_devices(Some("GPU-a, GPU-b"), &[1]).unwrap(), "GPU-b");
        assert_eq!(visible_devices(Some(""), &[2]).unwrap(), "2");
        assert!(visible_devices(Some("3"), &[1]).unwrap_err().contains("lists 1 GPUs"));
    }
}
