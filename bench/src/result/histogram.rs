//! Latency histograms: creation, exact merge, and the base64 form stored in result files.
//!
//! Histograms use HdrHistogram's V2 + DEFLATE serialization, which keeps every count, so merging the
//! histograms of many workers gives exactly the histogram of all their samples. Values are nanoseconds.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::io::Read;

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

/// HdrHistogram's V2 cookies: the plain encoding, and the DEFLATE-compressed one that wraps it.
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// Most bytes of counts a histogram of sharebench's range and precision can need (every count a 9-byte varint),
/// with room to spare: a header that claims more is refused before anything is allocated.
const MAX_PAYLOAD_BYTES: u32 = 2 << 20;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks an encoded histogram's headers against sharebench's own range and precision before the decoder sees
/// them: the decoder allocates what a header claims (a 60-byte histogram can claim 4 GB) and builds a counts
/// array for any range it names (up to 2^62 is gigabytes).
fn check_headers(bytes: &[u8]) -> Result<(), String> {
    let short = || "latency histogram is truncated".to_string();
    if bytes.len() < 8 {
        return Err(short());
    }
    let inner: Vec<u8> = match be_u32(bytes, 0) {
        V2_COOKIE => bytes[4..].iter().take(36).copied().collect(),
        V2_COMPRESSED_COOKIE => {
            let compressed = be_u32(bytes, 4) as usize;
            if compressed > bytes.len() - 8 {
                return Err(format!(
                    "latency histogram claims {compressed} compressed bytes but holds {}",
                    bytes.len() - 8
                ));
            }
            let mut head = Vec::with_capacity(40);
            let decoder = flate2::read::ZlibDecoder::new(&bytes[8..8 + compressed]);
            std::io::Read::take(decoder, 40)
                .read_to_end(&mut head)
                .map_err(|e| format!("latency histogram cannot be decompressed: {e}"))?;
            if head.len() < 4 || be_u32(&head, 0) != V2_COOKIE {
                return Err("latency histogram's compressed payload is not an HdrHistogram V2 encoding".into());
            }
            head[4..].to_vec()
        }
        other => return Err(format!("latency histogram has an unknown encoding (cookie {other:#x})")),
    };
    if inner.len() < 36 {
        return Err(short());
    }
    let (payload, digits, low, high) = (be_u32(&inner, 0), be_u32(&inner, 8), be_u64(&inner, 12), be_u64(&inner, 20));
    if payload > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "latency histogram claims {payload} bytes of counts, more than the {MAX_PAYLOAD_BYTES} any histogram of sharebench's range needs"
        ));
    }
    if (digits, low, high) != (SIGNIFICANT_DIGITS as u32, LOWEST_NS, HIGHEST_NS) {
        return Err(format!(
            "latency histogram has range {low}..{high} ns at {digits} significant digits, not sharebench's {LOWEST_NS}..{HIGHEST_NS} ns at {SIGNIFICANT_DIGITS}"
        ));
    }
    Ok(())
}

/// Parses base64 text written by [`to_base64`]: an HdrHistogram V2 encoding of sharebench's range and precision
/// (anything else is refused before it is decoded).
pub fn from_base64(text: &str) -> Result<LatencyHistogram, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| format!("latency histogram is not valid base64: {e}"))?;
    check_headers(&bytes)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("latency histogram cannot be decoded: {e:?}"))
}

/// A histogram as the buckets it recorded: (highest value of the bucket, count). A full histogram of
/// sharebench's range holds a quarter of a megabyte of counts whatever it recorded; this holds only what it did,
/// so ten thousand workers' histograms fit in memory at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorded {
    buckets: Vec<(u64, u64)>,
    samples: u64,
}

impl Recorded {
    pub fn of(h: &LatencyHistogram) -> Recorded {
        let buckets: Vec<(u64, u64)> = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect();
        Recorded { samples: buckets.iter().map(|b| b.1).sum(), buckets }
    }

    /// Samples recorded.
    pub fn len(&self) -> u64 {
        self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }

    /// The full histogram again, for percentiles.
    pub fn to_histogram(&self) -> LatencyHistogram {
        merged([self])
    }
}

/// All of `histograms` merged into one of sharebench's range, each sample as recorded (clamped to the range, as
/// [`record`] does): none is lost and no figure silently reads 0.
pub fn merged<'a>(histograms: impl IntoIterator<Item = &'a Recorded>) -> LatencyHistogram {
    let mut all = new_latency_histogram();
    for h in histograms {
        for &(value, count) in &h.buckets {
            all.saturating_record_n(value.clamp(LOWEST_NS, HIGHEST_NS), count);
        }
    }
    all
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

    /// The base64 of `bytes`.
    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn headers_that_claim_more_than_sharebench_writes_are_refused_before_decoding() {
        // A 60-byte histogram whose plain V2 header claims a 0xFFFFFFF0-byte payload: refused, nothing allocated.
        let mut bomb = Vec::new();
        bomb.extend(V2_COOKIE.to_be_bytes());
        bomb.extend(0xFFFF_FFF0u32.to_be_bytes());
        bomb.extend(0u32.to_be_bytes());
        bomb.extend(3u32.to_be_bytes());
        bomb.extend(1u64.to_be_bytes());
        bomb.extend(HIGHEST_NS.to_be_bytes());
        bomb.extend(1f64.to_be_bytes());
        bomb.resize(60, 0);
        let err = from_base64(&b64(&bomb)).unwrap_err();
        assert!(err.contains("claims 4294967280 bytes of counts"), "{err}");
        // A compressed histogram whose outer length exceeds what it holds.
        let mut h = new_latency_histogram();
        record(&mut h, 1000);
        let mut good = base64::engine::general_purpose::STANDARD.decode(to_base64(&h)).unwrap();
        good[4..8].copy_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        assert!(from_base64(&b64(&good)).unwrap_err().contains("compressed bytes but holds"));
        // A histogram of another range (up to 2^62) or precision is not sharebench's.
        let wide = Histogram::<u64>::new_with_bounds(1, 1 << 62, 3).unwrap();
        let mut bytes = Vec::new();
        V2DeflateSerializer::new().serialize(&wide, &mut bytes).unwrap();
        let err = from_base64(&b64(&bytes)).unwrap_err();
        assert!(err.contains("not sharebench's 1..3600000000000 ns at 3"), "{err}");
    }

    #[test]
    fn recorded_buckets_give_back_the_same_histogram_and_merge_without_loss() {
        let mut a = new_latency_histogram();
        for v in [5_000u64, 5_001, 600_000, 3_000_000_000] {
            record(&mut a, v);
        }
        let compact = Recorded::of(&a);
        assert_eq!((compact.len(), compact.buckets.len()), (4, 3), "5000 and 5001 share a bucket");
        let back = compact.to_histogram();
        assert_eq!((back.len(), back.value_at_quantile(0.5), back.max()), (a.len(), a.value_at_quantile(0.5), a.max()));
        let mut b = new_latency_histogram();
        record(&mut b, 10);
        let all = merged([&compact, &Recorded::of(&b)]);
        assert_eq!(all.len(), 5);
        // A bucket above the range (only a foreign histogram could hold one) is clamped, not dropped.
        let foreign = Recorded { buckets: vec![(7_200_000_000_000, 1)], samples: 1 };
        assert_eq!(merged([&foreign]).len(), 1);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(from_base64("not base64!").unwrap_err().contains("base64"));
        assert!(from_base64("AAAA").unwrap_err().contains("truncated"));
        assert!(from_base64("AAAAAAAAAAAA").unwrap_err().contains("unknown encoding"));
    }

    proptest! {
        #[test]
        fn merge_equals_recording_everything_in_one(a in proptest::collection::vec(1u64..10_000_000_000, 0..200),
                                                     b in proptest::collection::vec(1u64..10_000_000_000, 0..200)) {
            let (mut ha, mut hb, mut all) = (new_latency_histogram(), new_latency_histogram(), new_latency_histogram());
            for &v in &a { record(&mut ha, v); record(&mut all, v); }
            for &v in &b { record(&mut hb, v); record(&mut all, v); }
            let hb = from_base64(&to_base64(&hb)).unwrap();
            let both = merged([&Recorded::of(&ha), &Recorded::of(&hb)]);
            prop_assert_eq!(both, all);
        }
    }
}
