#!/usr/bin/env bash
# Evidence for verifying a foreign command's MPS membership from its parent (`run --exec`): which NVIDIA device
# files a process holds open with no context, with a context under MPS, with one outside MPS, and after its
# context is released; whether the daemon's client row goes with the context; and how long PyTorch takes to be
# ready with ResNet-50 (startup budget of a tenant). Usage (repo root, as root): bash bench/device/tenant-explore.sh
set -u
P=/tmp/sbt-pipe; L=/tmp/sbt-log; E=/tmp/sbt-empty; rm -rf $P $L $E; mkdir -p $P $L $E
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$L nvidia-cuda-mps-control -d; sleep 0.5
cat > /tmp/sbt-fds.py <<'PY'
import ctypes, os, subprocess, sys, time
cu = ctypes.CDLL("libcuda.so.1")
def fds(label):
    out = []
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try: t = os.readlink("/proc/self/fd/" + fd)
        except OSError: continue
        if "nvidia" in t: out.append(t)
    ps = subprocess.run("echo ps | nvidia-cuda-mps-control", shell=True, capture_output=True, text=True).stdout.strip().replace("\n", " | ")
    print("  %-28s fds %s\n  %-28s ps: %s" % (label, sorted(set(out)), "", ps))
fds("before cuInit")
cu.cuInit(0); fds("after cuInit")
dev = ctypes.c_int(); cu.cuDeviceGet(ctypes.byref(dev), 0)
ctx = ctypes.c_void_p(); r = cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev); cu.cuCtxSetCurrent(ctx)
buf = ctypes.c_void_p(); cu.cuMemAlloc_v2(ctypes.byref(buf), 1 << 20); cu.cuCtxSynchronize()
fds("context + 1 MiB")
cu.cuMemFree_v2(buf); cu.cuCtxSetCurrent(None); r = cu.cuDevicePrimaryCtxRelease_v2(dev); time.sleep(0.3)
fds("primary ctx released (r=%d)" % r)
PY
echo "### MPS (node PID namespace)"; CUDA_MPS_PIPE_DIRECTORY=$P python3 /tmp/sbt-fds.py
echo "### no MPS (empty pipe dir)"; CUDA_MPS_PIPE_DIRECTORY=$E python3 /tmp/sbt-fds.py
echo "### MPS, own PID namespace"; CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc python3 /tmp/sbt-fds.py
echo "### nvidia-smi's fds while it runs (NVML only)"
( nvidia-smi -l 1 >/dev/null & s=$!; sleep 2; ls -l /proc/$s/fd | grep -o '/dev/nvidia[^ ]*' | sort -u | tr '\n' ' '; kill $s ); echo
echo "### parent without CUDA, child with a context, own PID namespace: rows from the namespace"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc sh -c 'python3 -c "
import cupy, time, os; a = cupy.ones(1<<20); a.sum().get(); print(\"  child pid\", os.getpid(), os.readlink(\"/proc/self/ns/pid\")); time.sleep(3)" &
sleep 2.5; echo "  ps:"; echo ps | nvidia-cuda-mps-control | sed "s/^/    /"; for p in /proc/[0-9]*; do n=$(ls -l $p/fd 2>/dev/null | grep -c /dev/nvidia); [ "$n" -gt 0 ] && echo "    $(basename $p) $(cat $p/comm) holds $n nvidia fds, env pipe=$(tr "\0" "\n" < $p/environ | grep CUDA_MPS_PIPE)"; done; wait'
echo "### PyTorch ResNet-50: time to ready, batch-1 and batch-8 fp16 latency, solo (no MPS)"
CUDA_MPS_PIPE_DIRECTORY=$E python3 - <<'PY'
import time; t0 = time.time()
import torch, torchvision; t1 = time.time()
m = torchvision.models.resnet50(weights=None).cuda().half().eval(); t2 = time.time()
with torch.inference_mode():
    for bs in (1, 8):
        x = torch.randn(bs, 3, 224, 224, device="cuda", dtype=torch.half)
        for _ in range(20): m(x)
        torch.cuda.synchronize(); lat = []
        for _ in range(200):
            s = time.perf_counter(); m(x); torch.cuda.synchronize(); lat.append(time.perf_counter() - s)
        lat.sort(); print("  batch %d: p50 %.2f ms p99 %.2f ms -> %.0f images/s" % (bs, lat[100]*1e3, lat[198]*1e3, bs/lat[100]))
print("  import %.1f s, model to GPU %.1f s, total to ready %.1f s, max memory %d MiB" % (t1-t0, t2-t1, time.time()-t0, torch.cuda.max_memory_allocated() >> 20))
PY
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw --format=csv
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control; sleep 1; pgrep -a nvidia-cuda-mps || echo "no MPS left"
