#!/usr/bin/env bash
# Evidence for MPS membership that does not depend on pids: what an MPS client in its own PID namespace (as a
# Pod is) can see of its own membership. Tools on the machine, the client's /proc/self/maps and fds, the
# control daemon's `ps`, execution-affinity contexts with and without MPS, two clients in one namespace.
# Usage (repo root, as root, release binary in dist/): bash bench/device/explore-pidns.sh
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
echo "### tools"
for t in ip unshare nsenter setpriv mount python3 nvidia-cuda-mps-control nvidia-cuda-mps-server busybox iptables bridge; do
  printf '%-26s %s\n' "$t" "$(command -v $t || echo MISSING)"; done
python3 --version; ip -V 2>&1; unshare --version
ls -la /dev/nvidia* /dev/shm | head -20
ldconfig -p | grep -E 'libcuda\.so|libnvidia-ml' ; ls -la /usr/local/nvidia 2>/dev/null | head
readlink /proc/self/ns/pid /proc/self/ns/net; cat /etc/os-release | head -2; id
P=/tmp/sbx-pipe; L=/tmp/sbx-log; E=/tmp/sbx-empty; rm -rf $P $L $E; mkdir -p $P $L $E
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$L nvidia-cuda-mps-control -d; sleep 0.5
cat > /tmp/sbx-client.py <<'PY'
import ctypes, os, subprocess, sys, time
cu = ctypes.CDLL("libcuda.so.1")
def ck(r, what):
    if r != 0: print("  %s -> CUresult %d" % (what, r))
    return r
ck(cu.cuInit(0), "cuInit")
dev = ctypes.c_int(); ck(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
sup = ctypes.c_int(-1); ck(cu.cuDeviceGetExecAffinitySupport(ctypes.byref(sup), 0, dev), "cuDeviceGetExecAffinitySupport")
ctx = ctypes.c_void_p()
mode = sys.argv[1]
if mode == "affinity":
    class P(ctypes.Structure): _fields_ = [("type", ctypes.c_int), ("val", ctypes.c_uint), ("pad", ctypes.c_uint * 3)]
    p = P(0, 8)
    r = ck(cu.cuCtxCreate_v3(ctypes.byref(ctx), ctypes.byref(p), 1, 0, dev), "cuCtxCreate_v3(smCount=8)")
    if r != 0:
        ck(cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate_v2")
else:
    ck(cu.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev), "cuCtxCreate_v2")
n = ctypes.c_int(); cu.cuDeviceGetAttribute(ctypes.byref(n), 16, dev)
class A(ctypes.Structure): _fields_ = [("type", ctypes.c_int), ("val", ctypes.c_uint), ("pad", ctypes.c_uint * 3)]
a = A(); ck(cu.cuCtxGetExecAffinity(ctypes.byref(a), 0), "cuCtxGetExecAffinity")
buf = ctypes.c_void_p(); ck(cu.cuMemAlloc_v2(ctypes.byref(buf), 1 << 20), "cuMemAlloc"); cu.cuCtxSynchronize()
print("  pid %d ns %s exec-affinity-support %d, attr SMs %d, ctx affinity SMs %d" % (os.getpid(), os.readlink("/proc/self/ns/pid"), sup.value, n.value, a.val))
maps = [l.strip() for l in open("/proc/self/maps") if "mps" in l.lower() or "memfd" in l.lower()]
print("  maps with mps/memfd:", len(maps)); [print("   ", l) for l in sorted(set(x.split(None, 5)[-1] for x in maps))]
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try: t = os.readlink("/proc/self/fd/" + fd)
    except OSError: continue
    if "nvidia" in t or "memfd" in t or "socket" in t: print("    fd %s -> %s" % (fd, t))
if os.path.exists("/proc/self/net/unix"):
    print("  unix sockets mentioning mps:", [l.split()[-1] for l in open("/proc/self/net/unix") if "mps" in l][:6])
out = subprocess.run("echo ps | nvidia-cuda-mps-control; echo get_server_list | nvidia-cuda-mps-control", shell=True, capture_output=True, text=True)
print("  control ps:\n" + "".join("    " + l + "\n" for l in (out.stdout + out.stderr).splitlines()))
time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 0)
PY
echo "### MPS client in the node's PID namespace"
CUDA_MPS_PIPE_DIRECTORY=$P python3 /tmp/sbx-client.py plain
echo "### MPS client in its own PID namespace (+mount-proc)"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc python3 /tmp/sbx-client.py plain
echo "### same, own IPC + UTS + mount ns, uid 65532"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc --ipc --uts --mount setpriv --reuid=65532 --regid=65532 --clear-groups python3 /tmp/sbx-client.py plain
echo "### NOT MPS (empty pipe dir), own PID ns"
CUDA_MPS_PIPE_DIRECTORY=$E unshare --pid --fork --mount-proc python3 /tmp/sbx-client.py plain
echo "### exec affinity, MPS, own ns"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc python3 /tmp/sbx-client.py affinity
echo "### exec affinity, no MPS"
CUDA_MPS_PIPE_DIRECTORY=$E python3 /tmp/sbx-client.py affinity
echo "### two MPS clients in one PID namespace"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc sh -c "python3 /tmp/sbx-client.py plain 3 & sleep 1.5; python3 /tmp/sbx-client.py plain; wait"
echo "### sharebench check (today's binary) in its own PID namespace"
CUDA_MPS_PIPE_DIRECTORY=$P unshare --pid --fork --mount-proc "$B" check; echo "exit=$?"
echo "### daemon's view of pids: server list, server comm"
for s in $(echo get_server_list | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control); do echo "server $s: $(cat /proc/$s/comm) $(ls -l /proc/$s/fd | grep -c memfd) memfd fds"; done
cat $P/nvidia-cuda-mps-control.pid; echo; cat /proc/$(cat $P/nvidia-cuda-mps-control.pid)/comm
tail -5 $L/server.log
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control; sleep 1; pgrep -a nvidia-cuda-mps || echo "no MPS left"
