//! Per-kernel records and their compact on-disk encoding (24 bytes a kernel, 32 once base64-encoded).
//!
//! A record holds when the host submitted a kernel and how long it waited for completion, and when the kernel
//! ran on the GPU (`%globaltimer`, the same clock for every process on the GPU) on how many SMs. Host times are
//! offsets from the lane's host base; device times are offsets from the lane's earliest device start, so every
//! field fits a fixed width:
//!
//! | bytes | field                              | range              |
//! |-------|------------------------------------|--------------------|
//! | 0..6  | host submit offset, ns (u48)       | 78 hours           |
//! | 6..11 | latency submit->completion, ns (u40)| 18 minutes         |
//! | 11..17| device start offset, ns (u48)      | 78 hours           |
//! | 17..22| device duration, ns (u40)          | 18 minutes         |
//! | 22..24| SMs used (u16)                     |                    |
//!
//! All little-endian. Pure code: no I/O.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// Name of the encoding, stored next to the data so that a future layout cannot be misread.
pub const ENCODING: &str = "sb1-24le-base64";
pub const RECORD_BYTES: usize = 24;

const U40_MAX: u64 = (1 << 40) - 1;
const U48_MAX: u64 = (1 << 48) - 1;

/// One kernel, with absolute device times and host times relative to the lane's host base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelRecord {
    /// Host submit time, ns after the lane's host base.
    pub submit_ns: u64,
    /// Host-observed latency, submit to completion, ns.
    pub latency_ns: u64,
    /// Earliest block start on the GPU, `%globaltimer` ns.
    pub device_start_ns: u64,
    /// Latest block end on the GPU, `%globaltimer` ns.
    pub device_end_ns: u64,
    /// Distinct SMs the kernel's blocks ran on.
    pub sm_count: u16,
}

impl KernelRecord {
    pub fn device_duration_ns(&self) -> u64 {
        self.device_end_ns.saturating_sub(self.device_start_ns)
    }
}

/// Records as stored in a result file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodedRecords {
    pub encoding: String,
    /// Wall-clock time (Unix ns) of host offset 0.
    pub host_base_unix_ns: u64,
    /// `%globaltimer` value of device offset 0 (the earliest device start).
    pub device_base_ns: u64,
    pub count: u64,
    pub data: String,
}

/// Why a set of records could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    FieldTooLarge { index: usize, field: &'static str, value: u64 },
    DeviceEndBeforeStart { index: usize },
    UnknownEncoding(String),
    BadBase64(String),
    WrongLength { expected: u64, bytes: usize },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::FieldTooLarge { index, field, value } => {
                write!(f, "kernel record {index}: {field} = {value} does not fit the record encoding")
            }
            RecordError::DeviceEndBeforeStart { index } => write!(f, "kernel record {index}: device end before start"),
            RecordError::UnknownEncoding(e) => write!(f, "unknown record encoding '{e}' (expected '{ENCODING}')"),
            RecordError::BadBase64(e) => write!(f, "record data is not valid base64: {e}"),
            RecordError::WrongLength { expected, bytes } => write!(
                f,
                "record data holds {bytes} bytes, but count {expected} needs {} (truncated?)",
                expected * RECORD_BYTES as u64
            ),
        }
    }
}

fn put(buf: &mut Vec<u8>, value: u64, width: usize) {
    buf.extend_from_slice(&value.to_le_bytes()[..width]);
}

/// Encodes records, all relative to `host_base_unix_ns`.
pub fn encode(records: &[KernelRecord], host_base_unix_ns: u64) -> Result<EncodedRecords, RecordError> {
    let device_base_ns = records.iter().map(|r| r.device_start_ns).min().unwrap_or(0);
    let mut raw = Vec::with_capacity(records.len() * RECORD_BYTES);
    for (index, r) in records.iter().enumerate() {
        if r.device_end_ns < r.device_start_ns {
            return Err(RecordError::DeviceEndBeforeStart { index });
        }
        let fields = [
            ("host submit offset", r.submit_ns, U48_MAX, 6),
            ("latency", r.latency_ns, U40_MAX, 5),
            ("device start offset", r.device_start_ns - device_base_ns, U48_MAX, 6),
            ("device duration", r.device_duration_ns(), U40_MAX, 5),
        ];
        for (field, value, max, width) in fields {
            if value > max {
                return Err(RecordError::FieldTooLarge { index, field, value });
            }
            put(&mut raw, value, width);
        }
        put(&mut raw, r.sm_count as u64, 2);
    }
    Ok(EncodedRecords {
        encoding: ENCODING.to_string(),
        host_base_unix_ns,
        device_base_ns,
        count: records.len() as u64,
        data: base64::engine::general_purpose::STANDARD.encode(raw),
    })
}

/// A lane's records as they are stored (24 bytes each): what `report` keeps in memory, 40% less than as
/// [`KernelRecord`]s, each unpacked when it is read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    raw: Vec<u8>,
    device_base_ns: u64,
}

impl Packed {
    /// Packs records (for tests and callers that built them in memory).
    pub fn of(records: &[KernelRecord]) -> Result<Packed, RecordError> {
        unpack(&encode(records, 0)?)
    }

    pub fn len(&self) -> usize {
        self.raw.len() / RECORD_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Record `index`, with absolute device times; panics past the end, like a slice. Read as three
    /// little-endian words and shifted apart (the fields of the table above), as `report` reads millions.
    #[inline]
    pub fn get(&self, index: usize) -> KernelRecord {
        let at = index * RECORD_BYTES;
        let c: &[u8; RECORD_BYTES] = self.raw[at..at + RECORD_BYTES].try_into().expect("a whole record");
        let word =
            |i: usize| u64::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3], c[i + 4], c[i + 5], c[i + 6], c[i + 7]]);
        let (w0, w1, w2) = (word(0), word(8), word(16));
        let device_start_ns = self.device_base_ns.saturating_add((w1 >> 24 | w2 << 40) & U48_MAX);
        KernelRecord {
            submit_ns: w0 & U48_MAX,
            latency_ns: (w0 >> 48 | w1 << 16) & U40_MAX,
            device_start_ns,
            device_end_ns: device_start_ns.saturating_add((w2 >> 8) & U40_MAX),
            sm_count: (w2 >> 48) as u16,
        }
    }

    /// Every record, in the order recorded.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = KernelRecord> + ExactSizeIterator + Clone + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Checks and unpacks stored records, base64 decoded straight into their packed form.
pub fn unpack(encoded: &EncodedRecords) -> Result<Packed, RecordError> {
    if encoded.encoding != ENCODING {
        return Err(RecordError::UnknownEncoding(encoded.encoding.clone()));
    }
    // SIMD base64 (the records are most of what `report` reads); padding and alphabet checked as strictly as
    // the `base64` crate's standard engine that wrote them.
    let raw = base64_simd::STANDARD
        .decode_to_vec(encoded.data.as_bytes())
        .map_err(|e| RecordError::BadBase64(e.to_string()))?;
    if raw.len() as u64 != encoded.count.saturating_mul(RECORD_BYTES as u64) {
        return Err(RecordError::WrongLength { expected: encoded.count, bytes: raw.len() });
    }
    Ok(Packed { raw, device_base_ns: encoded.device_base_ns })
}

/// Decodes records back to absolute device times.
pub fn decode(encoded: &EncodedRecords) -> Result<Vec<KernelRecord>, RecordError> {
    Ok(unpack(encoded)?.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<KernelRecord> {
        vec![
            KernelRecord {
                submit_ns: 0,
                latency_ns: 612_000,
                device_start_ns: 1_700_000_000_000_000_000 + 5_000,
                device_end_ns: 1_700_000_000_000_000_000 + 600_000,
                sm_count: 132,
            },
            KernelRecord {
                submit_ns: 613_000,
                latency_ns: 15_000,
                device_start_ns: 1_700_000_000_000_000_000,
                device_end_ns: 1_700_000_000_000_000_000 + 4_000,
                sm_count: 1,
            },
        ]
    }

    #[test]
    fn round_trip_is_exact_and_32_bytes_a_kernel() {
        let records = sample();
        let enc = encode(&records, 42).unwrap();
        assert_eq!(enc.count, 2);
        assert_eq!(enc.device_base_ns, 1_700_000_000_000_000_000);
        assert_eq!(enc.data.len(), 2 * 32);
        assert_eq!(decode(&enc).unwrap(), records);
    }

    #[test]
    fn empty_round_trips() {
        let enc = encode(&[], 7).unwrap();
        assert_eq!(decode(&enc).unwrap(), vec![]);
    }

    #[test]
    fn truncated_data_is_named() {
        let mut enc = encode(&sample(), 0).unwrap();
        enc.data.truncate(32);
        assert!(matches!(decode(&enc), Err(RecordError::WrongLength { expected: 2, bytes: 24 })));
        enc.data = "!!!".into();
        assert!(matches!(decode(&enc), Err(RecordError::BadBase64(_))));
        enc.encoding = "v9".into();
        assert!(decode(&enc).unwrap_err().to_string().contains("unknown record encoding 'v9'"));
    }

    #[test]
    fn oversized_fields_are_refused_not_wrapped() {
        let mut r = sample();
        r[0].latency_ns = 1 << 41;
        assert!(matches!(encode(&r, 0), Err(RecordError::FieldTooLarge { field: "latency", .. })));
        let mut r = sample();
        r[0].device_end_ns = r[0].device_start_ns - 1;
        assert!(matches!(encode(&r, 0), Err(RecordError::DeviceEndBeforeStart { index: 0 })));
    }

    proptest! {
        #[test]
        fn any_record_in_range_round_trips(
            recs in proptest::collection::vec((0u64..U48_MAX, 0u64..U40_MAX, 0u64..U48_MAX, 0u64..U40_MAX, any::<u16>()), 0..50),
            base in 0u64..(u64::MAX / 2),
        ) {
            let records: Vec<KernelRecord> = recs.iter().map(|&(s, l, ds, dd, sm)| KernelRecord {
                submit_ns: s, latency_ns: l, device_start_ns: base + ds, device_end_ns: base + ds + dd, sm_count: sm,
            }).collect();
            let enc = encode(&records, 1).unwrap();
            prop_assert_eq!(enc.data.len(), records.len() * 32);
            prop_assert_eq!(decode(&enc).unwrap(), records.clone());
            let packed = Packed::of(&records).unwrap();
            prop_assert_eq!(packed.len(), records.len());
            prop_assert_eq!(packed.iter().rev().collect::<Vec<_>>(), records.iter().rev().copied().collect::<Vec<_>>());
        }
    }
}
