//! The common measuring window applied to a command's requests (pure): which requests count, and how they
//! become the same records and histogram as sharebench's own kernels (host times only: a foreign command's
//! kernels carry no device stamps, so its records say so rather than holding zeros that look measured).

use super::protocol::Request;
use crate::result::histogram::{self, LatencyHistogram};
use crate::result::records::KernelRecord;

/// The window every worker of a run measures: the same wall-clock interval for all of them (Unix ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
}

/// A request line as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// When sharebench read the line (Unix ns).
    pub at_unix_ns: u64,
    pub request: Request,
}

impl Received {
    /// (start, end) of the request on the wall clock: as the command gave its start, else ending on arrival.
    pub fn span(&self) -> (u64, u64) {
        let latency = self.request.latency_ns;
        match self.request.start_unix_ns {
            Some(start) => (start, start.saturating_add(latency)),
            None => (self.at_unix_ns.saturating_sub(latency), self.at_unix_ns),
        }
    }
}

/// The requests of one command, cut to the window.
pub struct Windowed {
    /// In start order; submit times are offsets from the window's start.
    pub records: Vec<KernelRecord>,
    pub histogram: LatencyHistogram,
    /// Requests that started before the window (loading, warm-up, waiting for peers): never counted.
    pub before: u64,
    /// Requests that ended after the window (in flight when it closed): not counted.
    pub after: u64,
    /// Items and tokens of the counted requests, where the command reported them.
    pub items: Option<u64>,
    pub tokens: Option<u64>,
    pub prompt_tokens: Option<u64>,
    /// Time to first token and time per output token of the counted requests that reported them.
    pub ttft: Option<LatencyHistogram>,
    pub tpot: Option<LatencyHistogram>,
}

/// Keeps the requests that started and ended inside `window`.
pub fn apply(received: &[Received], window: Window) -> Windowed {
    let mut inside: Vec<(u64, &Received)> = Vec::new();
    let (mut before, mut after) = (0, 0);
    for r in received {
        let (start, end) = r.span();
        if start < window.start_unix_ns {
            before += 1;
        } else if end > window.end_unix_ns {
            after += 1;
        } else {
            inside.push((start, r));
        }
    }
    inside.sort_by_key(|(start, _)| *start);
    let mut hist = histogram::new_latency_histogram();
    let sum = |field: fn(&Request) -> Option<u64>| {
        let values: Vec<u64> = inside.iter().filter_map(|(_, r)| field(&r.request)).collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let (items, tokens, prompt_tokens) = (sum(|r| r.items), sum(|r| r.tokens), sum(|r| r.prompt_tokens));
    let histogram_of = |field: fn(&Request) -> Option<u64>| {
        let mut h = histogram::new_latency_histogram();
        let mut any = false;
        for v in inside.iter().filter_map(|(_, r)| field(&r.request)) {
            histogram::record(&mut h, v);
            any = true;
        }
        any.then_some(h)
    };
    let (ttft, tpot) = (histogram_of(|r| r.ttft_ns), histogram_of(Request::tpot_ns));
    let records = inside
        .iter()
        .map(|(start, r)| {
            histogram::record(&mut hist, r.request.latency_ns);
            KernelRecord {
                submit_ns: start - window.start_unix_ns,
                latency_ns: r.request.latency_ns,
                ..KernelRecord::default()
            }
        })
        .collect();
    Windowed { records, histogram: hist, before, after, items, tokens, prompt_tokens, ttft, tpot }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_764_000_000_000_000_000;
    const MS: u64 = 1_000_000;

    fn at(arrival_ms: u64, latency_ms: u64) -> Received {
        Received {
            at_unix_ns: S + arrival_ms * MS,
            request: Request { latency_ns: latency_ms * MS, items: Some(2), ..Request::default() },
        }
    }

    #[test]
    fn only_requests_wholly_inside_the_window_count() {
        let window = Window { start_unix_ns: S + 100 * MS, end_unix_ns: S + 200 * MS };
        let received = [
            at(50, 5),   // warm-up, before the window
            at(104, 5),  // started 1 ms before the window
            at(150, 10), // inside
            at(120, 10), // inside (arrived out of order)
            at(203, 5),  // ended after the window
        ];
        let w = apply(&received, window);
        assert_eq!((w.before, w.after, w.records.len()), (2, 1, 2));
        assert_eq!(w.records[0].submit_ns, 10 * MS);
        assert_eq!(w.records[1].submit_ns, 40 * MS);
        assert!(w.records.iter().all(|r| r.device_start_ns == 0 && r.sm_count == 0));
        assert_eq!(w.histogram.len(), 2);
        assert_eq!((w.items, w.tokens), (Some(4), None));
    }

    #[test]
    fn a_stated_start_wins_over_the_arrival_time() {
        let window = Window { start_unix_ns: S, end_unix_ns: S + 100 * MS };
        let late_line = Received {
            at_unix_ns: S + 500 * MS,
            request: Request { latency_ns: 3 * MS, start_unix_ns: Some(S + 10 * MS), ..Request::default() },
        };
        let w = apply(&[late_line], window);
        assert_eq!(w.records.len(), 1);
        assert_eq!(w.records[0].submit_ns, 10 * MS);
        assert_eq!((w.items, w.tokens), (None, None));
    }

    #[test]
    fn streamed_requests_give_their_first_token_and_per_token_times_of_the_window_only() {
        let streamed = |start_ms: u64, latency_ms: u64, ttft_ms: u64, tokens: u64| Received {
            at_unix_ns: 0,
            request: Request {
                latency_ns: latency_ms * MS,
                start_unix_ns: Some(S + start_ms * MS),
                ttft_ns: Some(ttft_ms * MS),
                tokens: Some(tokens),
                prompt_tokens: Some(100),
                ..Request::default()
            },
        };
        let window = Window { start_unix_ns: S, end_unix_ns: S + 1000 * MS };
        // One before the window (not counted), two inside, one of a single token (a TTFT, no TPOT).
        let w = apply(
            &[streamed(0, 10, 5, 3), streamed(10, 210, 10, 101), streamed(20, 50, 50, 1)],
            Window { start_unix_ns: S + 5 * MS, ..window },
        );
        assert_eq!((w.records.len(), w.tokens, w.prompt_tokens), (2, Some(102), Some(200)));
        let (ttft, tpot) = (w.ttft.unwrap(), w.tpot.unwrap());
        assert_eq!((ttft.len(), tpot.len()), (2, 1));
        assert!(ttft.equivalent(ttft.max(), 50 * MS) && tpot.equivalent(tpot.max(), 2 * MS), "(210-10)/100 = 2 ms");
        let plain = apply(
            &[Received { at_unix_ns: S + 20 * MS, request: Request { latency_ns: MS, ..Request::default() } }],
            window,
        );
        assert!(plain.ttft.is_none() && plain.tpot.is_none(), "no ttft_ms: no streaming figures");
    }
}
