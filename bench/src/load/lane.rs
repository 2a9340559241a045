//! A decoded lane's records in memory, with what the analysis needs of them as a whole (their extent on each
//! clock, whether they are in order, their device-time and SM totals) gathered in one pass when the lane is
//! loaded, in parallel file by file. Analysing a group then reads each record once, in the overlap sweep,
//! instead of once per figure. Immutable: the totals cannot go stale. Pure.

use super::Clock;
use crate::result::records::{KernelRecord, Packed};

/// Earliest start and latest end of a lane's records on one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub first: u64,
    pub last: u64,
}

impl Extent {
    fn grow(extent: &mut Option<Extent>, (start, end): (u64, u64)) {
        let e = extent.get_or_insert(Extent { first: start, last: end });
        e.first = e.first.min(start);
        e.last = e.last.max(end);
    }
}

/// What a lane's records add up to on one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct OnClock {
    extent: Option<Extent>,
    /// Starts and ends never go back from one record to the next: the sweep reads them as they are.
    in_order: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Records {
    packed: Packed,
    /// Wall-clock time (Unix ns) the records' host offsets count from.
    host_base_unix_ns: u64,
    host: OnClock,
    device: OnClock,
    device_ns_total: u128,
    sm_total: u64,
}

impl Records {
    pub fn new(packed: Packed, host_base_unix_ns: u64) -> Records {
        let mut r = Records { packed, host_base_unix_ns, ..Default::default() };
        let (mut host, mut device) =
            (OnClock { in_order: true, ..Default::default() }, OnClock { in_order: true, ..Default::default() });
        let mut previous: Option<((u64, u64), (u64, u64))> = None;
        for record in r.packed.iter() {
            let (h, d) = (r.host_interval(&record), (record.device_start_ns, record.device_end_ns));
            if let Some((ph, pd)) = previous {
                host.in_order &= ph.0 <= h.0 && ph.1 <= h.1;
                device.in_order &= pd.0 <= d.0 && pd.1 <= d.1;
            }
            Extent::grow(&mut host.extent, h);
            Extent::grow(&mut device.extent, d);
            r.device_ns_total += record.device_duration_ns() as u128;
            r.sm_total += record.sm_count as u64;
            previous = Some((h, d));
        }
        (r.host, r.device) = (host, device);
        r
    }

    /// Records built in memory (tests, synthetic workers).
    pub fn of(records: &[KernelRecord], host_base_unix_ns: u64) -> Records {
        Records::new(Packed::of(records).expect("records that fit the encoding"), host_base_unix_ns)
    }

    fn host_interval(&self, r: &KernelRecord) -> (u64, u64) {
        let start = self.host_base_unix_ns.saturating_add(r.submit_ns);
        (start, start.saturating_add(r.latency_ns))
    }

    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// Every record, in the order recorded.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = KernelRecord> + ExactSizeIterator + Clone + '_ {
        self.packed.iter()
    }

    /// Record `index`'s (start, end) on `clock`.
    pub fn interval(&self, index: usize, clock: Clock) -> (u64, u64) {
        let r = self.packed.get(index);
        match clock {
            Clock::Device => (r.device_start_ns, r.device_end_ns),
            Clock::Host => self.host_interval(&r),
        }
    }

    fn on(&self, clock: Clock) -> &OnClock {
        match clock {
            Clock::Device => &self.device,
            Clock::Host => &self.host,
        }
    }

    /// Earliest start and latest end on `clock`; `None` without records.
    pub fn extent(&self, clock: Clock) -> Option<Extent> {
        self.on(clock).extent
    }

    /// Whether starts and ends on `clock` never go back from one record to the next.
    pub fn in_order(&self, clock: Clock) -> bool {
        self.on(clock).in_order
    }

    /// Mean device time of the records (0 without records).
    pub fn mean_device_ns(&self) -> f64 {
        self.device_ns_total as f64 / self.len().max(1) as f64
    }

    /// Mean SMs of the records (0 without records).
    pub fn mean_sm_count(&self) -> f64 {
        self.sm_total as f64 / self.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(submit: u64, latency: u64, start: u64, end: u64) -> KernelRecord {
        KernelRecord { submit_ns: submit, latency_ns: latency, device_start_ns: start, device_end_ns: end, sm_count: 4 }
    }

    #[test]
    fn extents_order_and_totals_are_gathered_once() {
        let r = Records::of(&[record(0, 10, 100, 105), record(10, 10, 110, 118)], 1_000);
        assert_eq!(r.extent(Clock::Host), Some(Extent { first: 1_000, last: 1_020 }));
        assert_eq!(r.extent(Clock::Device), Some(Extent { first: 100, last: 118 }));
        assert!(r.in_order(Clock::Host) && r.in_order(Clock::Device));
        assert_eq!((r.mean_device_ns(), r.mean_sm_count()), (6.5, 4.0));
        assert_eq!(r.interval(1, Clock::Host), (1_010, 1_020));
        assert_eq!(r.interval(1, Clock::Device), (110, 118));
    }

    #[test]
    fn a_record_that_goes_back_is_out_of_order_on_its_clock_only() {
        // Two requests in flight at once on the host; on the device the second ends before the first.
        let r = Records::of(&[record(0, 50, 100, 105), record(10, 10, 110, 118)], 0);
        assert!(!r.in_order(Clock::Host) && r.in_order(Clock::Device));
        let r = Records::of(&[record(0, 5, 100, 150), record(10, 100, 150, 160)], 0);
        assert!(r.in_order(Clock::Host) && r.in_order(Clock::Device));
        assert_eq!(Records::of(&[], 0).extent(Clock::Device), None);
    }
}
