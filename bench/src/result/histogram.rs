//! Latency histograms: creation, exact merge, and the base64 form stored in result files.
//!
//! Histograms use HdrHistogram's V2 + DEFLATE serialization, which keeps every count, so merging the
//! histograms of many workers gives exactly the histogram of all their samples. Values are nanoseconds.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

/// Lowest and highest trackable latency (1 ns .. 1 hour) and the precision (3 significant digits).
const LOWEST_NS: u64 = 1;
const HIGHEST_NS: u64 = 3_600_000_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

pub type LatencyHistogram = Histogram<u64>;

/// An empty latency histogram with sharebench's range and precision.
pub fn new_latency_histogram() -> LatencyHistogram {
    // The bounds are constants that hdrhistogram accepts; a failure here is a programming error caught by tests.
    Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS).expect("valid histogram bounds")
}

/// Records one latency, clamping to the trackable range so that no sample is ever dropped.
pub fn record(histogram: &mut LatencyHistogram, latency_ns: u64) {
    histogram.saturating_record(latency_ns.clamp(LOWEST_NS, HIGHEST_NS));
}

/// Serializes to base64 text.
pub fn to_base64(histogram: &LatencyHistogram) -> String {
    let mut bytes = Vec::new();
    // Serializing to a Vec cannot fail for a histogram we built.
    V2DeflateSerializer::new().serialize(histogram, &mut bytes).expect("serialize into memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Parses base64 text written by [`to_base64`] (or any HdrHistogram V2 serializer).
pub fn from_base64(text: &str) -> Result<LatencyHistogram, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| format!("latency histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("latency histogram cannot be decoded: {e:?}"))
}

/// Adds `other` into `into`; both must come from [`new_latency_histogram`] or a file written by sharebench.
pub fn merge(into: &mut LatencyHistogram, other: &LatencyHistogram) -> Result<(), String> {
    into.add(other).map_err(|e| format!("latency histograms cannot be merged: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn base64_round_trip_keeps_every_count() {
        let mut h = new_latency_histogram();
        for v in [10_000u64, 600_000, 600_100, 5_000_000_000] {
            record(&mut h, v);
        }
        let back = from_base64(&to_base64(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 4);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut h = new_latency_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(from_base64("not base64!").unwrap_err().contains("base64"));
        assert!(from_base64("AAAA").unwrap_err().contains("cannot be decoded"));
    }

    proptest! {
        #[test]
        fn merge_equals_recording_everything_in_one(a in proptest::collection::vec(1u64..10_000_000_000, 0..200),
                                                     b in proptest::collection::vec(1u64..10_000_000_000, 0..200)) {
            let (mut ha, mut hb, mut all) = (new_latency_histogram(), new_latency_histogram(), new_latency_histogram());
            for &v in &a { record(&mut ha, v); record(&mut all, v); }
            for &v in &b { record(&mut hb, v); record(&mut all, v); }
            let hb = from_base64(&to_base64(&hb)).unwrap();
            merge(&mut ha, &hb).unwrap();
            prop_assert_eq!(ha, all);
        }
    }
}
