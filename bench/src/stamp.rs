//! The per-launch stamp the kernels write (`struct KernelStamp` in `kernels/sharebench.cu`) and its reduction
//! to one device interval and SM count. Pure: the GPU layer copies the raw words, this module reads them.

/// u64 words per stamp: `start_inverted`, `end`, `sm_mask[4]`.
pub const STAMP_WORDS: usize = 6;

/// One kernel's execution on the GPU, on the `%globaltimer` clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInterval {
    /// Earliest block start.
    pub start_ns: u64,
    /// Latest block end.
    pub end_ns: u64,
    /// Distinct SMs the blocks ran on.
    pub sm_count: u16,
}

/// Reduces a raw stamp; `None` when the kernel never wrote it (the slot is still zero).
pub fn reduce(words: &[u64]) -> Option<DeviceInterval> {
    let [start_inverted, end, m0, m1, m2, m3] = <[u64; STAMP_WORDS]>::try_from(words).ok()?;
    if start_inverted == 0 && end == 0 {
        return None;
    }
    let start_ns = !start_inverted;
    if end < start_ns {
        return None;
    }
    let sm_count = [m0, m1, m2, m3].iter().map(|m| m.count_ones()).sum::<u32>() as u16;
    Some(DeviceInterval { start_ns, end_ns: end, sm_count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_the_inverted_start_and_counts_sms() {
        let words = [!1_000u64, 1_600, 0b1011, 0, 1 << 63, 1];
        assert_eq!(reduce(&words), Some(DeviceInterval { start_ns: 1_000, end_ns: 1_600, sm_count: 5 }));
    }

    #[test]
    fn unwritten_or_inconsistent_stamps_are_none() {
        assert_eq!(reduce(&[0; 6]), None);
        assert_eq!(reduce(&[!2_000u64, 1_000, 1, 0, 0, 0]), None);
        assert_eq!(reduce(&[1, 2, 3]), None);
    }
}
