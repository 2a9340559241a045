// sharebench kernels: the workloads the benchmark launches, compiled to PTX by kernels/build_ptx.py.
//
// Every kernel stamps when it ran on the GPU: thread 0 of each block reads %globaltimer (one nanosecond clock
// shared by every context on the GPU) when the block starts and again after the block's last thread is done,
// and folds both, with the block's %smid, into one KernelStamp per launch. The host passes the launch's own
// slot; a null slot turns stamping off (used to measure what stamping costs).
//
// Keep this file C++11 and free of includes: the PTX must be built by NVRTC 12.0 for compute_70 so that any
// driver from R525 on can JIT it.

struct KernelStamp {
    unsigned long long start_inverted;  // max over blocks of ~start, so ~value is the earliest block start
    unsigned long long end;             // max over blocks of the block end
    unsigned long long sm_mask[4];      // bit s set when a block ran on SM s (SM ids < 256)
};

__device__ __forceinline__ unsigned long long global_timer_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

__device__ __forceinline__ unsigned int sm_id() {
    unsigned int s;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(s));
    return s;
}

__device__ __forceinline__ unsigned long long block_start(const KernelStamp* stamp) {
    return (stamp != 0 && threadIdx.x == 0) ? global_timer_ns() : 0ull;
}

__device__ __forceinline__ void block_end(KernelStamp* stamp, unsigned long long start) {
    if (stamp == 0) {
        return;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long end = global_timer_ns();
        unsigned int sm = sm_id();
        atomicMax(&stamp->start_inverted, ~start);
        atomicMax(&stamp->end, end);
        atomicOr(&stamp->sm_mask[(sm >> 6) & 3u], 1ull << (sm & 63u));
    }
}

// Compute-bound: eight independent FP32 FMA chains per thread, 16 FLOP per thread per iteration.
extern "C" __global__ void sb_fma(KernelStamp* stamp, float* out, unsigned int iters, float seed) {
    unsigned long long start = block_start(stamp);
    const float m = 0.999999f;
    const float c = 1.0e-6f;
    float a0 = seed + threadIdx.x, a1 = a0 + 1.0f, a2 = a0 + 2.0f, a3 = a0 + 3.0f;
    float a4 = a0 + 4.0f, a5 = a0 + 5.0f, a6 = a0 + 6.0f, a7 = a0 + 7.0f;
#pragma unroll 16
    for (unsigned int i = 0; i < iters; ++i) {
        a0 = fmaf(a0, m, c);
        a1 = fmaf(a1, m, c);
        a2 = fmaf(a2, m, c);
        a3 = fmaf(a3, m, c);
        a4 = fmaf(a4, m, c);
        a5 = fmaf(a5, m, c);
        a6 = fmaf(a6, m, c);
        a7 = fmaf(a7, m, c);
    }
    out[blockIdx.x * blockDim.x + threadIdx.x] = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    block_end(stamp, start);
}

// Memory-bound: copies n 16-byte words from src to dst with a grid-stride loop, four loads in flight per thread.
extern "C" __global__ void sb_stream(KernelStamp* stamp, const uint4* src, uint4* dst, unsigned long long n) {
    unsigned long long start = block_start(stamp);
    const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 v0 = src[i];
        uint4 v1 = src[i + stride];
        uint4 v2 = src[i + 2 * stride];
        uint4 v3 = src[i + 3 * stride];
        dst[i] = v0;
        dst[i + stride] = v1;
        dst[i + 2 * stride] = v2;
        dst[i + 3 * stride] = v3;
    }
    for (; i < n; i += stride) {
        dst[i] = src[i];
    }
    block_end(stamp, start);
}

// Latency probe: one small block doing a short dependent FMA chain (iters may be 0: a pure launch).
extern "C" __global__ void sb_tiny(KernelStamp* stamp, float* out, unsigned int iters) {
    unsigned long long start = block_start(stamp);
    float a = (float)threadIdx.x;
    for (unsigned int i = 0; i < iters; ++i) {
        a = fmaf(a, 0.999999f, 1.0e-6f);
    }
    out[threadIdx.x] = a;
    block_end(stamp, start);
}

// Fault injection: writes through the given (invalid) address, raising an illegal-address error on purpose.
extern "C" __global__ void sb_fault(unsigned int* bad_address) {
    bad_address[threadIdx.x] = 0xdeadbeefu;
}
