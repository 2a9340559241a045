//! Overlap of kernels from different workers on the common `%globaltimer` clock: the direct evidence of spatial
//! sharing. Pure: takes each worker's device intervals, returns busy time, overlap time and the time spent at
//! each level of concurrency.
//!
//! Each worker's intervals are first merged into a sorted union, then the unions are swept together with a
//! k-way merge (a heap of each worker's next event), so the cost is O(K log W) for K kernels of W workers
//! with no large temporary buffers.

use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A half-open interval [start, end) in nanoseconds.
pub type Interval = (u64, u64);

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

/// Computes the overlap of the workers' kernels; `workers[w]` holds worker w's intervals in any order.
pub fn overlap(workers: Vec<Vec<Interval>>) -> Overlap {
    let unions: Vec<Vec<Interval>> = workers.into_iter().map(union).filter(|u| !u.is_empty()).collect();
    if unions.is_empty() {
        return Overlap { time_at_concurrency_ns: vec![0], ..Default::default() };
    }
    let first = unions.iter().map(|u| u[0].0).min().unwrap_or(0);
    let last = unions.iter().filter_map(|u| u.last().map(|i| i.1)).max().unwrap_or(0);
    // Heap entries: (time, is_start, worker). Ends sort before starts at the same time, so kernels that merely
    // touch are not counted as overlapping.
    let mut heap: BinaryHeap<Reverse<(u64, bool, usize)>> = BinaryHeap::with_capacity(unions.len());
    let mut cursor = vec![0usize; unions.len()];
    for (w, u) in unions.iter().enumerate() {
        heap.push(Reverse((u[0].0, true, w)));
    }
    let mut at = vec![0u64; unions.len() + 1];
    let (mut active, mut previous) = (0usize, first);
    while let Some(Reverse((time, is_start, w))) = heap.pop() {
        at[active] += time - previous;
        previous = time;
        if is_start {
            active += 1;
            heap.push(Reverse((unions[w][cursor[w]].1, false, w)));
        } else {
            active -= 1;
            cursor[w] += 1;
            if let Some(next) = unions[w].get(cursor[w]) {
                heap.push(Reverse((next.0, true, w)));
            }
        }
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
        let o = overlap(vec![vec![(0, 10), (20, 30)], vec![(10, 20), (30, 40)]]);
        assert_eq!((o.makespan_ns, o.busy_ns, o.overlap_ns), (40, 40, 0));
        assert_eq!(o.overlap_fraction(), 0.0);
        assert_eq!(o.time_at_concurrency_ns, vec![0, 40, 0]);
    }

    #[test]
    fn concurrent_workers_overlap() {
        let o = overlap(vec![vec![(0, 10)], vec![(5, 15)], vec![(6, 7)], vec![(30, 40)]]);
        assert_eq!((o.makespan_ns, o.busy_ns, o.overlap_ns), (40, 25, 5));
        assert_eq!(o.time_at_concurrency_ns, vec![15, 20, 4, 1, 0]);
        assert!((o.mean_concurrency() - (20.0 + 8.0 + 3.0) / 25.0).abs() < 1e-12);
    }

    #[test]
    fn a_workers_own_kernels_never_count_as_overlap() {
        let o = overlap(vec![vec![(0, 10), (5, 12)]]);
        assert_eq!((o.busy_ns, o.overlap_ns), (12, 0));
    }

    #[test]
    fn empty_input() {
        assert_eq!(overlap(vec![]).busy_ns, 0);
        assert_eq!(overlap(vec![vec![], vec![]]).overlap_fraction(), 0.0);
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
            let o = overlap(workers.clone());
            prop_assert!(o.overlap_ns <= o.busy_ns && o.busy_ns <= o.makespan_ns);
            prop_assert_eq!(o.time_at_concurrency_ns.iter().sum::<u64>(), o.makespan_ns);
            let (busy, over) = brute(&workers);
            prop_assert_eq!((o.busy_ns, o.overlap_ns), (busy, over));
            let mut reversed = workers.clone();
            reversed.reverse();
            for w in reversed.iter_mut() { w.reverse(); }
            prop_assert_eq!(overlap(reversed), o);
        }
    }
}
