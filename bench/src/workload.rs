//! What a worker launches: the kernel kinds, their sizes, and the work each launch does (pure, no GPU).
//!
//! The arithmetic here (FLOP and bytes per launch, the FP32 peak of a device) is what turns recorded kernels
//! into FLOP/s and bytes/s, so it lives in one place and is tested against the kernel sources by hand.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kernels in `kernels/sharebench.cu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelKind {
    /// Compute-bound FP32 FMA chains (`sb_fma`).
    Fma,
    /// Memory-bound device-to-device copy (`sb_stream`).
    Stream,
    /// One small block, for launch-latency probes (`sb_tiny`).
    Tiny,
}

impl KernelKind {
    pub const ALL: [KernelKind; 3] = [KernelKind::Fma, KernelKind::Stream, KernelKind::Tiny];

    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Fma => "fma",
            KernelKind::Stream => "stream",
            KernelKind::Tiny => "tiny",
        }
    }

    /// The PTX entry point.
    pub fn entry_point(self) -> &'static str {
        match self {
            KernelKind::Fma => "sb_fma",
            KernelKind::Stream => "sb_stream",
            KernelKind::Tiny => "sb_tiny",
        }
    }
}

impl fmt::Display for KernelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KernelKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        KernelKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown kernel '{s}' (valid: fma, stream, tiny)"))
    }
}

/// FLOP one thread of `sb_fma` does per iteration: eight FMA chains, two FLOP each.
pub const FMA_FLOP_PER_THREAD_ITER: u64 = 16;
/// Bytes one `sb_stream` element moves (a 16-byte word read plus the same written).
pub const STREAM_WORD_BYTES: u64 = 16;
/// Most threads a block may have on any CUDA GPU.
pub const MAX_THREADS_PER_BLOCK: u32 = 1024;

/// The size of one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelShape {
    pub kernel: KernelKind,
    /// Grid size (`tiny` always launches one block).
    pub blocks: u32,
    pub threads: u32,
    /// Loop iterations per thread (`fma`, `tiny`).
    pub iters: u32,
    /// Buffer size in bytes, read and written once per launch (`stream`).
    pub bytes: u64,
}

impl KernelShape {
    /// `fma 132x256 iters=70000` / `stream 1056x256 256 MiB` / `tiny 1x32`.
    pub fn describe(&self) -> String {
        match self.kernel {
            KernelKind::Fma => format!("fma {}x{} iters={}", self.blocks, self.threads, self.iters),
            KernelKind::Stream => format!("stream {}x{} {} MiB", self.blocks, self.threads, self.bytes >> 20),
            KernelKind::Tiny => format!("tiny 1x{} iters={}", self.threads, self.iters),
        }
    }

    /// Checks the shape, naming the flag at fault.
    pub fn validate(&self) -> Result<()> {
        if self.blocks == 0 {
            return Err(Error::flag("--blocks", "must be at least 1"));
        }
        if self.blocks > i32::MAX as u32 {
            return Err(Error::flag("--blocks", format!("{} exceeds the grid limit 2147483647", self.blocks)));
        }
        if self.threads == 0 || self.threads > MAX_THREADS_PER_BLOCK {
            return Err(Error::flag("--threads", format!("{} is not in 1..=1024", self.threads)));
        }
        if self.kernel == KernelKind::Fma && self.iters == 0 {
            return Err(Error::flag("--iters", "must be at least 1 for the fma kernel"));
        }
        if self.kernel == KernelKind::Stream && (self.bytes < STREAM_WORD_BYTES || self.bytes % STREAM_WORD_BYTES != 0)
        {
            return Err(Error::flag("--bytes", format!("{} must be a positive multiple of 16", self.bytes)));
        }
        Ok(())
    }

    /// Blocks actually launched.
    pub fn grid_blocks(&self) -> u32 {
        match self.kernel {
            KernelKind::Tiny => 1,
            _ => self.blocks,
        }
    }

    /// Floating-point operations one launch performs.
    pub fn flop_per_launch(&self) -> u64 {
        let threads = self.grid_blocks() as u64 * self.threads as u64;
        match self.kernel {
            KernelKind::Fma => threads * self.iters as u64 * FMA_FLOP_PER_THREAD_ITER,
            KernelKind::Tiny => threads * self.iters as u64 * 2,
            KernelKind::Stream => 0,
        }
    }

    /// Device-memory bytes one launch moves (read plus written).
    pub fn bytes_per_launch(&self) -> u64 {
        match self.kernel {
            KernelKind::Stream => 2 * self.bytes,
            _ => 0,
        }
    }
}

/// FP32 lanes (CUDA cores) per SM for a compute capability, as NVIDIA's programming guide lists them.
pub fn fp32_lanes_per_sm(major: i32, minor: i32) -> Option<u32> {
    match (major, minor) {
        (6, 0) => Some(64),
        (6, _) => Some(128),
        (7, _) => Some(64),
        (8, 0) => Some(64),
        (8, _) => Some(128),
        (9, 0) => Some(128),
        (10, _) | (11, _) | (12, _) => Some(128),
        _ => None,
    }
}

/// FP32 FMA peak in FLOP/s: SMs x lanes x 2 FLOP x clock.
pub fn fp32_peak_flops(sm_count: u32, lanes_per_sm: u32, clock_khz: u32) -> f64 {
    sm_count as f64 * lanes_per_sm as f64 * 2.0 * clock_khz as f64 * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(kernel: KernelKind) -> KernelShape {
        KernelShape { kernel, blocks: 132, threads: 256, iters: 1000, bytes: 1 << 20 }
    }

    #[test]
    fn kernel_names_round_trip() {
        for k in KernelKind::ALL {
            assert_eq!(k.name().parse::<KernelKind>().unwrap(), k);
        }
        assert!("gemm".parse::<KernelKind>().unwrap_err().contains("valid: fma, stream, tiny"));
    }

    #[test]
    fn fma_flop_count_matches_the_kernel() {
        // 132 blocks x 256 threads x 1000 iterations x 8 FMA x 2 FLOP
        assert_eq!(shape(KernelKind::Fma).flop_per_launch(), 132 * 256 * 1000 * 16);
        assert_eq!(shape(KernelKind::Fma).bytes_per_launch(), 0);
    }

    #[test]
    fn stream_moves_the_buffer_twice_and_tiny_uses_one_block() {
        assert_eq!(shape(KernelKind::Stream).bytes_per_launch(), 2 << 20);
        assert_eq!(shape(KernelKind::Tiny).grid_blocks(), 1);
        assert_eq!(shape(KernelKind::Tiny).flop_per_launch(), 256 * 1000 * 2);
    }

    #[test]
    fn validation_names_the_flag() {
        let mut s = shape(KernelKind::Fma);
        s.threads = 2048;
        assert!(s.validate().unwrap_err().problem.contains("--threads"));
        s.threads = 256;
        s.blocks = 0;
        assert!(s.validate().unwrap_err().problem.contains("--blocks"));
        let mut s = shape(KernelKind::Stream);
        s.bytes = 17;
        assert!(s.validate().unwrap_err().problem.contains("--bytes"));
        assert!(shape(KernelKind::Tiny).validate().is_ok());
    }

    #[test]
    fn h100_peak_is_about_67_tflops() {
        let lanes = fp32_lanes_per_sm(9, 0).unwrap();
        let peak = fp32_peak_flops(132, lanes, 1_980_000);
        assert!((peak - 66.9e12).abs() < 0.1e12, "{peak}");
        assert_eq!(fp32_lanes_per_sm(7, 0), Some(64));
        assert_eq!(fp32_lanes_per_sm(5, 0), None);
    }
}
