//! Overlap of kernels from different workers on the common `%globaltimer` clock: the direct evidence of spatial
//! sharing. Pure: takes each worker's device intervals, returns busy time, overlap time and the time spent at
//! each level of concurrency.
//!
//! A worker's intervals are read as they were recorded when their starts and ends never go back (a closed loop on
//! one stream: the usual case), else first merged into a sorted union. The workers are then swept together with
//! a k-way merge (a heap of each worker's next event, touching intervals of one worker joined), so the cost is
//! O(K log W) for K kernels of W workers with no copy of the records. Large inputs are cut into time slices swept
//! on all cores; the figures are sums of integer nanoseconds, the same however the work is cut.

use serde::Serialize;
use std::cmp::Reverse;
use std::collections::binary_heap::{BinaryHeap, PeekMut};

/// A half-open interval [start, end) in nanoseconds.
pub type Interval = (u64, u64);

/// Intervals in slices of time swept apart, above this many (below it one sweep is quicker than the threads).
pub const PARALLEL_ABOVE: usize = 200_000;

/// One worker's intervals, by index in the order it recorded them.
pub trait Lane: Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn interval(&self, index: usize) -> Interval;
    /// Whether starts and ends never go back from one interval to the next.
    fn in_order(&self) -> bool {
        (1..self.len()).all(|i| {
            let (a, b) = (self.interval(i - 1), self.interval(i));
            a.0 <= b.0 && a.1 <= b.1
        })
    }
}

impl Lane for Vec<Interval> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn interval(&self, index: usize) -> Interval {
        self[index]
    }
}

/// A lane whose starts and ends never go back: as recorded, or its union.
enum Ordered<'a, L> {
    AsRecorded(&'a L),
    Union(Vec<Interval>),
}

impl<L: Lane> Ordered<'_, L> {
    fn of(lane: &L) -> Ordered<'_, L> {
        if lane.in_order() {
            Ordered::AsRecorded(lane)
        } else {
            Ordered::Union(union((0..lane.len()).map(|i| lane.interval(i)).collect()))
        }
    }

    fn len(&self) -> usize {
        match self {
            Ordered::AsRecorded(lane) => lane.len(),
            Ordered::Union(u) => u.len(),
        }
    }

    fn interval(&self, index: usize) -> Interval {
        match self {
            Ordered::AsRecorded(lane) => lane.interval(index),
            Ordered::Union(u) => u[index],
        }
    }

    /// The first index whose interval starts at or after `time`.
    fn first_from(&self, time: u64) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.interval(mid).0 < time {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// The next stretch of the lane's union from interval `*next` on, cut to [from, to): intervals that touch
    /// or overlap join. `None` once the lane has nothing more before `to`.
    fn next_union(&self, next: &mut usize, from: u64, to: u64) -> Option<Interval> {
        let (start, mut end) = (*next < self.len()).then(|| self.interval(*next))?;
        if start >= to {
            return None;
        }
        *next += 1;
        while *next < self.len() && end < to {
            let (s, e) = self.interval(*next);
            if s > end {
                break;
            }
            end = end.max(e);
            *next += 1;
        }
        if end >= to {
            // The slice ends inside this stretch: nothing more of the lane is in it.
            *next = self.len();
        }
        Some((start.max(from), end.min(to)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Overlap {
    /// From the earliest start to the latest end.
    pub makespan_ns: u64,
    /// Time at least one worker had a kernel running.
    pub busy_ns: u64,
    /// Time at least two different workers had kernels running.
    pub overlap_ns: u64,
    /// `time_at_concurrency_ns[k]`: time exactly k workers had kernels running (index 0: idle gaps inside the
    /// makespan).
    pub time_at_concurrency_ns: Vec<u64>,
}

impl Overlap {
    /// Share of busy time during which kernels of two or more workers ran.
    pub fn overlap_fraction(&self) -> f64 {
        if self.busy_ns == 0 {
            0.0
        } else {
            self.overlap_ns as f64 / self.busy_ns as f64
        }
    }

    /// Time-weighted mean number of workers running, over busy time.
    pub fn mean_concurrency(&self) -> f64 {
        let weighted: f64 = self.time_at_concurrency_ns.iter().enumerate().map(|(k, &t)| k as f64 * t as f64).sum();
        if self.busy_ns == 0 {
            0.0
        } else {
            weighted / self.busy_ns as f64
        }
    }
}

/// Merges intervals into a sorted list of disjoint intervals (touching intervals join).
pub fn union(mut intervals: Vec<Interval>) -> Vec<Interval> {
    if !intervals.windows(2).all(|w| w[0].0 <= w[1].0) {
        intervals.sort_unstable();
    }
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for (start, end) in intervals {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// A heap entry: the event's time, then ends before starts at the same time (kernels that merely touch are not
/// counted as overlapping), then the lane. One integer, so the heap compares once.
fn event(time: u64, is_start: bool, lane: usize) -> Reverse<u128> {
    Reverse(((time as u128) << 64) | ((is_start as u128) << 32) | lane as u128)
}

/// Stretches a lane's cursor reads ahead at once: a run of its records read in a row, which the hardware
/// prefetches, where reading one record of each of many lanes in turn would wait on memory for every one.
const READ_AHEAD: usize = 64;

/// Where the sweep is in one lane: the stretches read ahead, and the next record after them.
struct Cursor {
    next: usize,
    ahead: Vec<Interval>,
    taken: usize,
}

impl Cursor {
    /// A cursor at `from`. A stretch that began before `from` and is still running starts at `from` (ends never
    /// go back, so the interval before the first one starting at `from` is the one that reaches furthest).
    fn at<L: Lane>(lane: &Ordered<L>, from: u64) -> Cursor {
        let first = lane.first_from(from);
        let next = if first > 0 && lane.interval(first - 1).1 > from { first - 1 } else { first };
        Cursor { next, ahead: Vec::with_capacity(READ_AHEAD), taken: 0 }
    }

    /// The lane's next stretch within [from, to), if any.
    fn take<L: Lane>(&mut self, lane: &Ordered<L>, from: u64, to: u64) -> Option<Interval> {
        if self.taken == self.ahead.len() {
            self.ahead.clear();
            self.taken = 0;
            while self.ahead.len() < READ_AHEAD {
                match lane.next_union(&mut self.next, from, to) {
                    Some(stretch) => self.ahead.push(stretch),
                    None => break,
                }
            }
        }
        let stretch = self.ahead.get(self.taken).copied()?;
        self.taken += 1;
        Some(stretch)
    }
}

/// Adds to `at[k]` the time within [from, to) that exactly k lanes were busy.
fn sweep<L: Lane>(lanes: &[Ordered<L>], from: u64, to: u64, at: &mut [u64]) {
    let mut cursors: Vec<Cursor> = lanes.iter().map(|lane| Cursor::at(lane, from)).collect();
    let mut ends = vec![0u64; lanes.len()];
    let mut heap = BinaryHeap::with_capacity(lanes.len());
    for (w, (lane, cursor)) in lanes.iter().zip(&mut cursors).enumerate() {
        if let Some((start, end)) = cursor.take(lane, from, to) {
            ends[w] = end;
            heap.push(event(start, true, w));
        }
    }
    let (mut active, mut previous) = (0usize, from);
    // The earliest event is replaced in place by its lane's next one: one sift down an event.
    while let Some(mut top) = heap.peek_mut() {
        let key = top.0;
        let (time, is_start, w) = ((key >> 64) as u64, (key >> 32) & 1 == 1, key as u32 as usize);
        at[active] += time - previous;
        previous = time;
        if is_start {
            active += 1;
            *top = event(ends[w], false, w);
        } else {
            active -= 1;
            match cursors[w].take(&lanes[w], from, to) {
                Some((start, end)) => {
                    ends[w] = end;
                    *top = event(start, true, w);
                }
                None => {
                    PeekMut::pop(top);
                }
            }
        }
    }
    at[0] += to - previous;
}

/// Computes the overlap of the workers' kernels; `lanes[w]` holds worker w's intervals in any order.
pub fn overlap<L: Lane>(lanes: &[L]) -> Overlap {
    let intervals: usize = lanes.iter().map(Lane::len).sum();
    overlap_in_slices(lanes, if intervals > PARALLEL_ABOVE { crate::parallel::cores() as u64 * 4 } else { 1 })
}

/// [`overlap`], with the makespan cut into `slices` equal slices of time swept on all cores.
fn overlap_in_slices<L: Lane>(lanes: &[L], slices: u64) -> Overlap {
    let ordered: Vec<Ordered<L>> = crate::parallel::map_if(slices > 1, lanes, |lane| Ordered::of(lane))
        .into_iter()
        .filter(|o| o.len() > 0)
        .collect();
    if ordered.is_empty() {
        return Overlap { time_at_concurrency_ns: vec![0], ..Default::default() };
    }
    let first = ordered.iter().map(|o| o.interval(0).0).min().unwrap_or(0);
    let last = ordered.iter().map(|o| o.interval(o.len() - 1).1).max().unwrap_or(first);
    let cut = |i: u64| first + ((last - first) as u128 * i as u128 / slices as u128) as u64;
    let bounds: Vec<(u64, u64)> = (0..slices).map(|i| (cut(i), cut(i + 1))).filter(|(a, b)| b > a).collect();
    let parts = crate::parallel::map(&bounds, |&(from, to)| {
        let mut at = vec![0u64; ordered.len() + 1];
        sweep(&ordered, from, to, &mut at);
        at
    });
    let mut at = vec![0u64; ordered.len() + 1];
    for part in parts {
        at.iter_mut().zip(part).for_each(|(total, t)| *total += t);
    }
    let busy_ns = at[1..].iter().sum();
    let overlap_ns = at.get(2..).map(|a| a.iter().sum()).unwrap_or(0);
    Overlap { makespan_ns: last - first, busy_ns, overlap_ns, time_at_concurrency_ns: at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn serial_workers_do_not_overlap() {
        let o = overlap(&[vec![(0, 10), (20, 30)], vec![(10, 20), (30, 40)]]);
        assert_eq!((o.makespan_ns, o.busy_ns, o.overlap_ns), (40, 40, 0));
        assert_eq!(o.overlap_fraction(), 0.0);
        assert_eq!(o.time_at_concurrency_ns, vec![0, 40, 0]);
    }

    #[test]
    fn concurrent_workers_overlap() {
        let o = overlap(&[vec![(0, 10)], vec![(5, 15)], vec![(6, 7)], vec![(30, 40)]]);
        assert_eq!((o.makespan_ns, o.busy_ns, o.overlap_ns), (40, 25, 5));
        assert_eq!(o.time_at_concurrency_ns, vec![15, 20, 4, 1, 0]);
        assert!((o.mean_concurrency() - (20.0 + 8.0 + 3.0) / 25.0).abs() < 1e-12);
    }

    #[test]
    fn a_workers_own_kernels_never_count_as_overlap() {
        let o = overlap(&[vec![(0, 10), (5, 12)]]);
        assert_eq!((o.busy_ns, o.overlap_ns), (12, 0));
    }

    #[test]
    fn empty_input() {
        assert_eq!(overlap::<Vec<Interval>>(&[]).busy_ns, 0);
        assert_eq!(overlap(&[vec![], vec![]]).overlap_fraction(), 0.0);
    }

    /// Brute force over unit time steps, for the property test.
    fn brute(workers: &[Vec<Interval>]) -> (u64, u64) {
        let end = workers.iter().flatten().map(|i| i.1).max().unwrap_or(0);
        let (mut busy, mut over) = (0, 0);
        for t in 0..end {
            let n = workers.iter().filter(|w| w.iter().any(|&(s, e)| s <= t && t < e)).count();
            busy += (n >= 1) as u64;
            over += (n >= 2) as u64;
        }
        (busy, over)
    }

    proptest! {
        #[test]
        fn invariants_hold(workers in proptest::collection::vec(
            proptest::collection::vec((0u64..200, 0u64..30).prop_map(|(s, d)| (s, s + d)), 0..12), 0..6)) {
            let o = overlap(&workers);
            prop_assert!(o.overlap_ns <= o.busy_ns && o.busy_ns <= o.makespan_ns);
            prop_assert_eq!(o.time_at_concurrency_ns.iter().sum::<u64>(), o.makespan_ns);
            let (busy, over) = brute(&workers);
            prop_assert_eq!((o.busy_ns, o.overlap_ns), (busy, over));
            let mut reversed = workers.clone();
            reversed.reverse();
            for w in reversed.iter_mut() { w.reverse(); }
            prop_assert_eq!(overlap(&reversed), o.clone());
            // Cut into slices of time, swept apart: the same figures to the nanosecond.
            for slices in 2..6 {
                prop_assert_eq!(overlap_in_slices(&workers, slices), o.clone());
            }
        }
    }
}
