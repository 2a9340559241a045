//! The GPU layer: the only module that touches cudarc. Opens a device, describes it, loads the embedded PTX,
//! launches the sharebench kernels into per-launch stamp slots and reads the stamps back.
//!
//! All unsafe code of the crate lives here. Soundness rests on three rules kept in this file:
//! every kernel gets arguments matching its signature in `kernels/sharebench.cu`; each lane's buffers are used
//! only by that lane's stream; and the host reads a buffer only after synchronizing that stream. Because of the
//! last two rules cudarc's per-buffer event tracking is switched off (it would add two events to every launch).

use crate::error::{Error, Result};
use crate::result::GpuIdentity;
use crate::stamp::{self, DeviceInterval, STAMP_WORDS};
use crate::workload::{self, KernelKind, KernelShape};
use cudarc::driver::{
    result as cu, sys, CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig,
    PushKernelArg,
};
use std::sync::Arc;
use std::time::Duration;

/// The kernels, built from `kernels/sharebench.cu` by `kernels/build_ptx.py`.
pub const PTX: &str = include_str!("../../kernels/sharebench.ptx");

/// Fails with a clear message when libcuda cannot be loaded (no NVIDIA driver here).
pub fn ensure_driver() -> Result<()> {
    // SAFETY: only tries to dlopen libcuda under its usual names; no CUDA call is made.
    if unsafe { sys::is_culib_present() } {
        return Ok(());
    }
    Err(Error::new("no NVIDIA driver: libcuda.so could not be loaded")
        .observed("dlopen of libcuda.so / libcuda.so.1 failed")
        .fix("run on a machine with an NVIDIA GPU and driver R525 or newer; in a container, use the NVIDIA container runtime with NVIDIA_DRIVER_CAPABILITIES=compute,utility"))
}

/// GPUs this process can see (cuInit and cuDeviceGetCount: no context is created, so no MPS client either).
pub fn visible_gpus() -> Result<u32> {
    ensure_driver()?;
    let count = CudaContext::device_count().map_err(|e| driver_error("cuInit / cuDeviceGetCount", e))?;
    Ok(count.max(0) as u32)
}

fn driver_error(what: &str, e: cu::DriverError) -> Error {
    let name = e.error_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|_| format!("{:?}", e.0));
    let mut err = Error::new(format!("{what} failed: {name}"));
    if e.0 == sys::CUresult::CUDA_ERROR_MPS_MAX_CLIENTS_REACHED {
        err = Error::new(format!("MPS client limit (48) reached: {what} failed: {name}"))
            .observed("the MPS server of this GPU already serves its maximum number of clients (the 49th context on an H100, driver 580)")
            .fix("run at most 48 MPS clients per GPU: fewer workers, or fewer Pods per GPU (lower the sharing replicas)");
    }
    if e.0 == sys::CUresult::CUDA_ERROR_DEVICE_UNAVAILABLE {
        err = Error::new(format!("MPS client limit (48) reached, or the GPU is held exclusively: {what} failed: {name}"))
            .observed("the driver refused this process (cudaErrorDevicesUnavailable, code 46); through the CUDA runtime the 49th MPS client of a GPU gets this at its first allocation")
            .fix("run at most 48 MPS clients per GPU (fewer workers, or fewer Pods per GPU: lower the replicas); without MPS, check that the GPU is not in an exclusive compute mode held by another process");
    }
    if e.0 == sys::CUresult::CUDA_ERROR_ILLEGAL_ADDRESS {
        err = err.observed(
            "a kernel on this GPU accessed an illegal address; under MPS a fault in any client tears down every client of that MPS server",
        );
    }
    if e.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE {
        err = err.fix("no CUDA GPU is visible: check nvidia-smi, CUDA_VISIBLE_DEVICES and the container's GPU request");
    }
    err
}

/// Formats a CUDA UUID as nvidia-smi does: `GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("GPU-{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// How the host thread waits for its GPU work (the context's scheduling flag): spinning answers soonest and
/// keeps a CPU busy; yielding spins but gives the CPU up between polls (still runnable: a CPU quota is still
/// spent); blocking sleeps until the GPU's interrupt wakes it (no CPU while waiting, a wake-up's latency added).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    Spin,
    Yield,
    Blocking,
}

impl Waiting {
    pub fn label(self) -> &'static str {
        match self {
            Waiting::Spin => "spin",
            Waiting::Yield => "yield",
            Waiting::Blocking => "blocking",
        }
    }

    fn flag(self) -> sys::CUctx_flags {
        match self {
            Waiting::Spin => sys::CUctx_flags::CU_CTX_SCHED_SPIN,
            Waiting::Yield => sys::CUctx_flags::CU_CTX_SCHED_YIELD,
            Waiting::Blocking => sys::CUctx_flags::CU_CTX_SCHED_BLOCKING_SYNC,
        }
    }
}

/// Sets how the primary context of `ordinal` waits, before it is created (cuDevicePrimaryCtxSetFlags).
fn set_waiting(ordinal: u32, waiting: Waiting) -> Result<()> {
    cu::init().map_err(|e| driver_error("cuInit", e))?;
    let device = cu::device::get(ordinal as i32).map_err(|e| driver_error("cuDeviceGet", e))?;
    // SAFETY: `device` came from cuDeviceGet; the call only records flags for the primary context.
    unsafe { sys::cuDevicePrimaryCtxSetFlags_v2(device, waiting.flag() as u32) }
        .result()
        .map_err(|e| driver_error("setting the context's scheduling flag (cuDevicePrimaryCtxSetFlags)", e))
}

/// An open device with the sharebench kernels loaded.
pub struct Gpu {
    ctx: Arc<CudaContext>,
    module: Arc<CudaModule>,
    identity: GpuIdentity,
    /// Device memory taken by [`Gpu::hold_memory`], freed with the context.
    held: Vec<CudaSlice<u8>>,
}

impl Gpu {
    /// Creates (retains) the primary context on device `ordinal` and loads the kernels; CUDA chooses how the
    /// host waits (spin while there are fewer contexts than CPUs, else yield).
    pub fn open(ordinal: u32) -> Result<Gpu> {
        Gpu::open_waiting(ordinal, None)
    }

    /// [`Gpu::open`], with the host waiting as `waiting` says.
    pub fn open_waiting(ordinal: u32, waiting: Option<Waiting>) -> Result<Gpu> {
        let count = visible_gpus()?;
        if ordinal >= count {
            return Err(Error::flag("--gpu", format!("device {ordinal} does not exist ({count} visible)")));
        }
        if let Some(waiting) = waiting {
            set_waiting(ordinal, waiting)?;
        }
        let ctx = CudaContext::new(ordinal as usize).map_err(|e| driver_error("creating the CUDA context", e))?;
        // SAFETY: see the module comment: buffers never cross streams and are read only after a synchronize.
        unsafe { ctx.disable_event_tracking() };
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(PTX))
            .map_err(|e| driver_error("loading the sharebench PTX (driver JIT)", e))?;
        let identity = describe(&ctx, ordinal)?;
        Ok(Gpu { ctx, module, identity, held: vec![] })
    }

    pub fn identity(&self) -> &GpuIdentity {
        &self.identity
    }

    /// Free and total device memory as this context sees them now (`cuMemGetInfo`; under an MPS pinned-memory
    /// limit free is capped, the total is not); `None` where the query fails.
    pub fn memory_seen(&self) -> Option<(u64, u64)> {
        let (free, total) = self.ctx.mem_get_info().ok()?;
        Some((free as u64, total as u64))
    }

    /// Takes device memory and holds it until the context goes: `ask` bytes, or all it can get, in pieces of at
    /// most 1 GiB, each written once (so it is really resident), halving a piece the driver refuses until 16 MiB.
    /// Returns what it got and, where it stopped short, the driver's refusal.
    pub fn hold_memory(&mut self, ask: crate::mps::memory::MemoryAsk) -> crate::result::memory::MemoryHold {
        use crate::mps::memory::MemoryAsk;
        let target = match ask {
            MemoryAsk::Bytes(b) => b,
            MemoryAsk::All => u64::MAX,
        };
        let stream = self.ctx.default_stream();
        let (mut held, mut piece, mut stopped_by) = (0u64, 1u64 << 30, None);
        while held < target {
            let size = piece.min(target - held);
            match stream.alloc_zeros::<u8>(size as usize) {
                Ok(slice) => {
                    self.held.push(slice);
                    held += size;
                }
                Err(e) if piece > 16 << 20 => {
                    piece /= 2;
                    stopped_by = Some(driver_error("allocating", e).problem);
                }
                Err(e) => {
                    stopped_by = Some(driver_error("allocating", e).problem);
                    break;
                }
            }
        }
        let _ = stream.synchronize();
        // Asked for all: running out is the point, not a stop short of it.
        let stopped_by = match (ask, held >= target) {
            (_, true) => None,
            (MemoryAsk::All, false) => stopped_by.map(|s| format!("all it could get: {s}")),
            (MemoryAsk::Bytes(_), false) => stopped_by,
        };
        crate::result::memory::MemoryHold {
            asked: ask.label(),
            held_bytes: held,
            stopped_by,
            free_after_bytes: self.memory_seen().map(|(free, _)| free).unwrap_or(0),
        }
    }

    /// Records what this context may use of the device's memory in its identity (see `mps::memory`).
    pub fn set_context_memory(&mut self, memory: crate::result::memory::ContextMemory) {
        self.identity.context_memory = Some(memory);
    }

    /// How this context's host threads wait, as the driver reports it (cuCtxGetFlags): `spin`, `yield`,
    /// `blocking`, or `auto` (CUDA's choice); `None` where it cannot be read.
    pub fn waiting_in_effect(&self) -> Option<&'static str> {
        self.ctx.bind_to_thread().ok()?;
        let mut flags: u32 = 0;
        // SAFETY: writes one unsigned int for the context bound to this thread.
        unsafe { sys::cuCtxGetFlags(&mut flags) }.result().ok()?;
        Some(match flags & sys::CUctx_flags::CU_CTX_SCHED_MASK as u32 {
            1 => "spin",
            2 => "yield",
            4 => "blocking",
            _ => "auto",
        })
    }

    /// A new stream with buffers for `shape` and room for `capacity` stamps.
    pub fn lane(&self, shape: KernelShape, capacity: usize) -> Result<KernelLane> {
        let stream = self.ctx.new_stream().map_err(|e| driver_error("creating a CUDA stream", e))?;
        let function =
            self.module.load_function(shape.kernel.entry_point()).map_err(|e| driver_error("finding the kernel", e))?;
        let alloc = |what: &str, e| driver_error(&format!("allocating the {what} buffer"), e);
        let capacity = capacity.max(1);
        let stamps = stream.alloc_zeros::<u64>(capacity * STAMP_WORDS).map_err(|e| alloc("stamp", e))?;
        let buffers = match shape.kernel {
            KernelKind::Stream => {
                let words = (shape.bytes / workload::STREAM_WORD_BYTES) as usize * 4;
                let src = stream.alloc_zeros::<u32>(words).map_err(|e| alloc("source", e))?;
                let dst = stream.alloc_zeros::<u32>(words).map_err(|e| alloc("destination", e))?;
                let (src_ptr, _) = src.device_ptr(&stream);
                // SAFETY: src is a live allocation of `shape.bytes` bytes on this stream.
                unsafe { cu::memset_d8_async(src_ptr, 0x5a, shape.bytes as usize, stream.cu_stream()) }
                    .map_err(|e| driver_error("filling the source buffer", e))?;
                LaneBuffers::Copy { src, dst }
            }
            KernelKind::Fma | KernelKind::Tiny => {
                let n = shape.grid_blocks() as usize * shape.threads as usize;
                LaneBuffers::Output(stream.alloc_zeros::<f32>(n).map_err(|e| alloc("output", e))?)
            }
        };
        stream.synchronize().map_err(|e| driver_error("preparing buffers", e))?;
        let fault = self.module.load_function("sb_fault").map_err(|e| driver_error("finding the fault kernel", e))?;
        Ok(KernelLane { stream, function, fault, shape, buffers, stamps, capacity })
    }

    /// Launches one `tiny` kernel and waits for it: proves the context works (and, under MPS, has connected).
    pub fn run_probe_kernel(&self) -> Result<()> {
        let shape = KernelShape { kernel: KernelKind::Tiny, blocks: 1, threads: 32, iters: 0, bytes: 0 };
        let lane = self.lane(shape, 1)?;
        lane.launch(Some(0))?;
        lane.synchronize()
    }

    /// Device-to-device copy rate in bytes/s (read + written), by `cuMemcpyDtoDAsync` timed with events.
    pub fn copy_bandwidth(&self, bytes: usize, repeats: u32) -> Result<f64> {
        let stream = self.ctx.new_stream().map_err(|e| driver_error("creating a CUDA stream", e))?;
        let src = stream.alloc_zeros::<u8>(bytes).map_err(|e| driver_error("allocating the copy source", e))?;
        let mut dst = stream.alloc_zeros::<u8>(bytes).map_err(|e| driver_error("allocating the copy target", e))?;
        let copy = |dst: &mut CudaSlice<u8>| stream.memcpy_dtod(&src, dst).map_err(|e| driver_error("cuMemcpyDtoD", e));
        copy(&mut dst)?;
        let start = self
            .ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| driver_error("creating an event", e))?;
        let end = self
            .ctx
            .new_event(Some(sys::CUevent_flags::CU_EVENT_DEFAULT))
            .map_err(|e| driver_error("creating an event", e))?;
        start.record(&stream).map_err(|e| driver_error("recording an event", e))?;
        for _ in 0..repeats {
            copy(&mut dst)?;
        }
        end.record(&stream).map_err(|e| driver_error("recording an event", e))?;
        end.synchronize().map_err(|e| driver_error("waiting for the copies", e))?;
        let ms = start.elapsed_ms(&end).map_err(|e| driver_error("reading event times", e))? as f64;
        Ok(2.0 * bytes as f64 * repeats as f64 / (ms / 1e3))
    }
}

fn describe(ctx: &Arc<CudaContext>, ordinal: u32) -> Result<GpuIdentity> {
    use sys::CUdevice_attribute as A;
    let attr = |a: A| ctx.attribute(a).map_err(|e| driver_error("reading a device attribute", e));
    let name = ctx.name().map_err(|e| driver_error("reading the device name", e))?;
    let uuid = ctx.uuid().map_err(|e| driver_error("reading the device UUID", e))?;
    let uuid_bytes: [u8; 16] = uuid.bytes.map(|b| b as u8);
    let compute_capability = ctx.compute_capability().map_err(|e| driver_error("reading the compute capability", e))?;
    let sm_count = attr(A::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32;
    let mut cuda_driver_api = 0i32;
    // SAFETY: cuDriverGetVersion writes one int.
    unsafe { sys::cuDriverGetVersion(&mut cuda_driver_api) };
    Ok(GpuIdentity {
        name,
        uuid: format_uuid(&uuid_bytes),
        ordinal,
        compute_capability,
        sm_count,
        context_sm_count: context_sm_count(ctx).unwrap_or(sm_count),
        fp32_lanes_per_sm: workload::fp32_lanes_per_sm(compute_capability.0, compute_capability.1),
        clock_khz: ctx.attribute(A::CU_DEVICE_ATTRIBUTE_CLOCK_RATE).ok().map(|c| c as u32),
        memory_bytes: ctx.total_mem().unwrap_or(0) as u64,
        cuda_driver_api,
        driver_version: crate::host::driver_version(),
        context_memory: None,
    })
}

/// Whether this process may create contexts limited to a number of SMs (`cuDeviceGetExecAffinitySupport`).
/// Measured on an H100 with driver 580: 1 in an MPS client, 0 in any other process, whatever its PID namespace;
/// so it tells MPS membership without pids. `None` where the query fails or the GPU predates Volta (compute
/// capability 7.0), which has no SM affinity even under MPS.
pub fn exec_affinity_supported(gpu: &Gpu) -> Option<bool> {
    if gpu.identity.compute_capability.0 < 7 {
        return None;
    }
    gpu.ctx.bind_to_thread().ok()?;
    let mut supported: std::ffi::c_int = 0;
    // SAFETY: the call writes one int for a valid device handle of this live context.
    let status = unsafe {
        sys::cuDeviceGetExecAffinitySupport(
            &mut supported,
            sys::CUexecAffinityType::CU_EXEC_AFFINITY_TYPE_SM_COUNT,
            gpu.ctx.cu_device(),
        )
    };
    (status == sys::CUresult::CUDA_SUCCESS).then_some(supported == 1)
}

/// SMs this context may use (`cuCtxGetExecAffinity`): capped by an MPS active thread percentage.
fn context_sm_count(ctx: &Arc<CudaContext>) -> Option<u32> {
    ctx.bind_to_thread().ok()?;
    // SAFETY: an all-zero CUexecAffinityParam is a valid out-parameter; the call fills it for the current context.
    let mut param: sys::CUexecAffinityParam = unsafe { std::mem::zeroed() };
    let status =
        unsafe { sys::cuCtxGetExecAffinity(&mut param, sys::CUexecAffinityType::CU_EXEC_AFFINITY_TYPE_SM_COUNT) };
    if status != sys::CUresult::CUDA_SUCCESS {
        return None;
    }
    // SAFETY: for CU_EXEC_AFFINITY_TYPE_SM_COUNT the union holds smCount.
    Some(unsafe { param.param.smCount.val })
}

enum LaneBuffers {
    Output(CudaSlice<f32>),
    Copy { src: CudaSlice<u32>, dst: CudaSlice<u32> },
}

/// One stream launching one kernel shape, with its own buffers and stamp slots.
pub struct KernelLane {
    stream: Arc<CudaStream>,
    function: CudaFunction,
    fault: CudaFunction,
    shape: KernelShape,
    buffers: LaneBuffers,
    stamps: CudaSlice<u64>,
    capacity: usize,
}

impl KernelLane {
    /// Stamp slots available before [`KernelLane::take_intervals`] must empty them.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Launches one kernel; `slot` picks the stamp slot, `None` launches without stamping.
    pub fn launch(&self, slot: Option<usize>) -> Result<()> {
        let stamp_ptr: u64 = match slot {
            Some(i) if i < self.capacity => self.stamps.device_ptr(&self.stream).0 + (i * STAMP_WORDS * 8) as u64,
            Some(i) => return Err(Error::new(format!("stamp slot {i} out of range (capacity {})", self.capacity))),
            None => 0,
        };
        let cfg = LaunchConfig {
            grid_dim: (self.shape.grid_blocks(), 1, 1),
            block_dim: (self.shape.threads, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut builder = self.stream.launch_builder(&self.function);
        builder.arg(&stamp_ptr);
        let (iters, seed) = (self.shape.iters, 1.0f32);
        let (a, b, n);
        match &self.buffers {
            LaneBuffers::Output(out) => {
                a = out.device_ptr(&self.stream).0;
                builder.arg(&a).arg(&iters);
                if self.shape.kernel == KernelKind::Fma {
                    builder.arg(&seed);
                }
            }
            LaneBuffers::Copy { src, dst } => {
                a = src.device_ptr(&self.stream).0;
                b = dst.device_ptr(&self.stream).0;
                n = self.shape.bytes / workload::STREAM_WORD_BYTES;
                builder.arg(&a).arg(&b).arg(&n);
            }
        }
        // SAFETY: the argument list matches the kernel's signature for each shape (see the match above and
        // kernels/sharebench.cu); every pointer is a live allocation of this lane sized for the launch.
        unsafe { builder.launch(cfg) }.map(|_| ()).map_err(|e| driver_error("launching the kernel", e))
    }

    /// Launches `sb_fault`, which writes through an invalid address: an injected GPU fault (blast-radius tests).
    pub fn launch_fault(&self) -> Result<()> {
        // An address in the first page is never a valid device allocation.
        let bad_address: u64 = 0x10;
        let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (32, 1, 1), shared_mem_bytes: 0 };
        let mut builder = self.stream.launch_builder(&self.fault);
        builder.arg(&bad_address);
        // SAFETY: sb_fault takes one pointer; the illegal access it makes is the point, and the driver reports it
        // as an error of this context rather than touching host memory.
        unsafe { builder.launch(cfg) }.map(|_| ()).map_err(|e| driver_error("launching the fault kernel", e))?;
        self.synchronize()
    }

    /// Waits until everything launched on this lane has finished; reports faults raised by its kernels.
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(|e| driver_error("waiting for the kernel", e))
    }

    /// Reads back the first `n` stamp slots and clears them for reuse. Call after [`KernelLane::synchronize`].
    pub fn take_intervals(&mut self, n: usize) -> Result<Vec<Option<DeviceInterval>>> {
        let n = n.min(self.capacity);
        let mut words = vec![0u64; n * STAMP_WORDS];
        if n > 0 {
            let view = self.stamps.slice(0..n * STAMP_WORDS);
            self.stream.memcpy_dtoh(&view, &mut words).map_err(|e| driver_error("reading the stamps", e))?;
            self.stream.memset_zeros(&mut self.stamps).map_err(|e| driver_error("clearing the stamps", e))?;
            self.synchronize()?;
        }
        Ok(words.chunks_exact(STAMP_WORDS).map(stamp::reduce).collect())
    }
}

/// Times `n` back-to-back launch-and-synchronize round trips of `tiny` with no stamping and no recording:
/// the floor the recorded loop is compared with.
pub fn minimal_round_trip(lane: &KernelLane, n: u32) -> Result<Duration> {
    let start = std::time::Instant::now();
    for _ in 0..n {
        lane.launch(None)?;
        lane.synchronize()?;
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_formats_like_nvidia_smi() {
        let bytes = [0xe3, 0x70, 0xa4, 0x65, 0x49, 0xc4, 0x84, 0x58, 0, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(format_uuid(&bytes), "GPU-e370a465-49c4-8458-0001-020304050607");
    }

    #[test]
    fn embedded_ptx_is_jittable_by_a_cuda_12_0_driver() {
        assert!(PTX.contains(".version 8.0"), "PTX ISA must be at most 8.0");
        assert!(PTX.contains(".target sm_70"), "PTX target must be at most sm_70");
        for kernel in KernelKind::ALL {
            assert!(PTX.contains(&format!(".entry {}(", kernel.entry_point())), "{kernel} missing");
        }
        assert!(PTX.contains("%globaltimer") && PTX.contains("%smid"));
    }
}
