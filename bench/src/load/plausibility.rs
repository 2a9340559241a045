//! Is a decoded kernel record physically possible? A record overwritten with garbage still decodes (any 24 bytes
//! do), so every record is checked against the worker that wrote it before it is analysed:
//! - it ran on at most the GPU's SMs;
//! - its host submit and completion lie inside the worker's measuring window (`started_unix_ns` ..
//!   `finished_unix_ns`), within [`WINDOW_TOLERANCE_NS`] (clock reads around the window);
//! - its device interval lies inside a span no longer than that window (the device clock, `%globaltimer`, has
//!   another origin, but not another rate), with the same tolerance;
//! - the host waited at least as long as the kernel ran on the device, within [`LATENCY_TOLERANCE_NS`] (the
//!   resolution of `%globaltimer` and of the host clock);
//! - a lane's kernels ran one after another on its stream (a kernel starts after the previous one ended, within
//!   the same tolerance): records copied or repeated within a lane overlap themselves;
//! - its lane's histogram holds one sample per record, up to the same largest latency (within the histogram's
//!   precision): a histogram that does not belong to its records is refused, not reported.
//!
//! Pure.

use crate::result::records::Packed;

/// Slack on the worker's measuring window: clock reads before and after it, and host clock steps.
pub const WINDOW_TOLERANCE_NS: u64 = 1_000_000_000;
/// Slack between host latency and device duration: the two clocks' resolutions.
pub const LATENCY_TOLERANCE_NS: u64 = 100_000;

/// The worker a lane's records must fit.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub host_base_unix_ns: u64,
    pub started_unix_ns: u64,
    pub finished_unix_ns: u64,
    pub gpu_sm_count: u32,
    /// Whether the records carry device times (sharebench's kernels); a command's requests have none.
    pub device_stamps: bool,
}

/// The first impossible record: its index and what is wrong with it.
pub fn first_implausible(records: &Packed, b: &Bounds) -> Option<(usize, String)> {
    let window = b.finished_unix_ns.saturating_sub(b.started_unix_ns);
    let (earliest, latest) =
        (b.started_unix_ns.saturating_sub(WINDOW_TOLERANCE_NS), b.finished_unix_ns + WINDOW_TOLERANCE_NS);
    let device_origin = records.iter().map(|r| r.device_start_ns).min().unwrap_or(0);
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut previous_end: Option<u64> = None;
    records.iter().enumerate().find_map(|(i, r)| {
        let previous = previous_end.replace(r.device_end_ns);
        let submit = b.host_base_unix_ns.saturating_add(r.submit_ns);
        let done = submit.saturating_add(r.latency_ns);
        let why = if !b.device_stamps && (r.device_start_ns | r.device_end_ns | r.sm_count as u64) != 0 {
            "holds device times, but its lane has no device stamps (a command's requests)".to_string()
        } else if r.sm_count as u32 > b.gpu_sm_count {
            format!("ran on {} SMs, but the GPU has {}", r.sm_count, b.gpu_sm_count)
        } else if r.device_end_ns < r.device_start_ns {
            "device end before device start".to_string()
        } else if submit < earliest || done > latest {
            format!(
                "host times {:.3}..{:.3} ms lie outside the worker's window 0..{:.3} ms (tolerance {} ms)",
                ms(submit) - ms(b.started_unix_ns),
                ms(done) - ms(b.started_unix_ns),
                ms(window),
                WINDOW_TOLERANCE_NS / 1_000_000
            )
        } else if r.device_end_ns - device_origin > window + WINDOW_TOLERANCE_NS {
            format!(
                "device interval ends {:.3} ms after the lane's first kernel, longer than the worker's {:.3} ms window",
                ms(r.device_end_ns - device_origin),
                ms(window)
            )
        } else if let Some(previous) = previous.filter(|&p| b.device_stamps && r.device_start_ns + LATENCY_TOLERANCE_NS < p) {
            format!(
                "started on the device {:.3} ms before the previous kernel of its stream ended (records repeated or copied?)",
                ms(previous - r.device_start_ns)
            )
        } else if r.device_duration_ns() > r.latency_ns + LATENCY_TOLERANCE_NS {
            format!(
                "ran {:.3} ms on the device but the host waited only {:.3} ms for it",
                ms(r.device_duration_ns()),
                ms(r.latency_ns)
            )
        } else {
            return None;
        };
        Some((i, why))
    })
}

/// Why a lane's histogram does not belong to its records, if it does not: another sample count, or another
/// largest latency than the records' (beyond the histogram's 3-digit precision). A worker that stopped early
/// (`complete` false) may hold samples whose records it had not read back yet: then the histogram may hold more,
/// never fewer.
pub fn histogram_mismatch(records: &Packed, samples: u64, max_ns: u64, complete: bool) -> Option<String> {
    let n = records.len() as u64;
    if samples < n || (complete && samples != n) {
        return Some(format!("its latency histogram holds {samples} samples but the lane has {n} records"));
    }
    if !complete {
        return None;
    }
    let largest = records.iter().map(|r| r.latency_ns).max()?;
    let close = max_ns.abs_diff(largest) <= largest / 500 + 1;
    (!close).then(|| {
        format!(
            "its latency histogram's largest latency ({:.3} ms) is not its records' ({:.3} ms)",
            max_ns as f64 / 1e6,
            largest as f64 / 1e6
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::records::KernelRecord;

    const START: u64 = 1_795_000_000_000_000_000;

    fn bounds() -> Bounds {
        Bounds {
            host_base_unix_ns: START + 1_000_000,
            started_unix_ns: START,
            finished_unix_ns: START + 2_000_000_000,
            gpu_sm_count: 132,
            device_stamps: true,
        }
    }

    fn packed(records: &[KernelRecord]) -> Packed {
        Packed::of(records).unwrap()
    }

    /// Ten 0.6 ms kernels, one a millisecond, with 20 us of host overhead each.
    fn good() -> Vec<KernelRecord> {
        (0..10)
            .map(|i| KernelRecord {
                submit_ns: i * 1_000_000,
                latency_ns: 620_000,
                device_start_ns: 5_000_000_000 + i * 1_000_000 + 10_000,
                device_end_ns: 5_000_000_000 + i * 1_000_000 + 610_000,
                sm_count: 16,
            })
            .collect()
    }

    #[test]
    fn real_records_pass() {
        assert_eq!(first_implausible(&packed(&good()), &bounds()), None);
        assert_eq!(first_implausible(&packed(&[]), &bounds()), None);
    }

    #[test]
    fn a_record_of_ff_bytes_is_caught() {
        // What 24 bytes of 0xFF decode to: every field at its maximum.
        let mut records = good();
        records[3] = KernelRecord {
            submit_ns: (1 << 48) - 1,
            latency_ns: (1 << 40) - 1,
            device_start_ns: 5_000_000_000 + (1 << 48) - 1,
            device_end_ns: 5_000_000_000 + (1 << 48) - 1 + (1 << 40) - 1,
            sm_count: u16::MAX,
        };
        let (index, why) = first_implausible(&packed(&records), &bounds()).unwrap();
        assert_eq!(index, 3);
        assert!(why.contains("65535 SMs, but the GPU has 132"), "{why}");
    }

    #[test]
    fn each_rule_names_what_is_wrong() {
        let check = |edit: &dyn Fn(&mut KernelRecord)| {
            let mut records = good();
            edit(&mut records[5]);
            first_implausible(&packed(&records), &bounds())
        };
        let (i, why) = check(&|r| r.submit_ns = 10_000_000_000).unwrap();
        assert!(i == 5 && why.contains("outside the worker's window"), "{why}");
        let (_, why) = check(&|r| {
            r.device_start_ns += 9_000_000_000;
            r.device_end_ns += 9_000_000_000;
        })
        .unwrap();
        assert!(why.contains("longer than the worker's"), "{why}");
        let (_, why) = check(&|r| r.latency_ns = 100_000).unwrap();
        assert!(why.contains("the host waited only 0.100 ms"), "{why}");
        // Within the clocks' resolution a kernel may look a little longer on the device than on the host.
        assert_eq!(check(&|r| r.latency_ns = 550_000), None);
    }

    #[test]
    fn records_repeated_within_a_lane_overlap_themselves_and_are_refused() {
        let mut records = good();
        records.extend(good());
        let (i, why) = first_implausible(&packed(&records), &bounds()).unwrap();
        assert_eq!(i, 10);
        assert!(why.contains("before the previous kernel of its stream ended"), "{why}");
        // A command's requests (host times only) may overlap: several in flight.
        let host = Bounds { device_stamps: false, ..bounds() };
        let requests: Vec<KernelRecord> =
            records.iter().map(|r| KernelRecord { device_start_ns: 0, device_end_ns: 0, sm_count: 0, ..*r }).collect();
        assert_eq!(first_implausible(&packed(&requests), &host), None);
    }

    #[test]
    fn a_histogram_that_is_not_its_records_is_named() {
        let records = packed(&good());
        assert_eq!(histogram_mismatch(&records, 10, 620_000, true), None);
        assert_eq!(histogram_mismatch(&records, 10, 620_300, true), None, "within the histogram's precision");
        let one = histogram_mismatch(&records, 1, 5_000_000_000, true).unwrap();
        assert!(one.contains("1 samples but the lane has 10"), "{one}");
        let slow = histogram_mismatch(&records, 10, 5_000_000_000, true).unwrap();
        assert!(slow.contains("largest latency (5000.000 ms)"), "{slow}");
        // A worker stopped by a fault had recorded more samples than it had read back as records.
        assert_eq!(histogram_mismatch(&records, 12, 900_000, false), None);
        assert!(histogram_mismatch(&records, 9, 620_000, false).is_some());
    }
}
