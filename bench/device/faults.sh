#!/usr/bin/env bash
# Faults during a run, on a real GPU: a worker SIGKILLed mid-run, the MPS daemon killed mid-run, a worker that
# never reaches the barrier, a 49th MPS client, and a real GPU fault (blast radius under MPS and time-slicing).
# In every case the surviving results must be kept, the report must say what failed, the private daemon must
# be gone, and the exit code must say the run was incomplete.
# Usage (repo root, release binary in dist/): bash bench/device/faults.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
# Leftovers of earlier runs on this machine would confuse the checks (matched by process name, which the kernel cuts to 15 characters: nvidia-cuda-mps).
pkill -9 -x nvidia-cuda-mps; sleep 0.5
after() {  # after CASE DIR EXIT: the checks every case ends with
  echo "compare exit=$3"
  if pgrep -x nvidia-cuda-mps >/dev/null; then echo "FAIL: an MPS daemon is still running"; pkill -9 -x nvidia-cuda-mps; else echo "ok: no MPS daemon left"; fi
  if pgrep -f "sharebench run " >/dev/null; then echo "FAIL: workers still running"; pkill -9 -f "sharebench run "; else echo "ok: no worker left"; fi
  echo "results kept: $(ls "$2/results" 2>/dev/null | wc -l) files; INCOMPLETE marker: $([ -e "$2/INCOMPLETE" ] && echo yes || echo no)"
  python3 - "$2" <<'PY'
import json, sys, glob
for f in sorted(glob.glob(sys.argv[1] + "/results/*.json")):
    d = json.load(open(f))
    print("  %-26s complete=%-5s kernels=%-5d %s" % (f.split("/")[-1], d["status"]["complete"], d["lanes"][0]["kernels"], (d["status"]["error"] or "")[:150]))
PY
  grep -E "^(failed|warning: compare)" "$2/summary.txt" 2>/dev/null | cut -c1-220 | head -12
}
finish() {  # finish DIR PID: wait for compare, keep its output inside DIR
  wait "$2"; local rc=$?
  mv "$1.summary" "$1/summary.txt" 2>/dev/null; mv "$1.stderr" "$1/stderr.txt" 2>/dev/null
  return $rc
}

echo "### 1. a worker SIGKILLed mid-run (mps, 4 workers)"
D=$O/kill-worker; "$B" compare --out $D --modes mps --workers 4 --no-solo --kernels 3000 > $D.summary 2> $D.stderr & pid=$!
sleep 4; pkill -9 -f -- "--mode mps .*--worker-index 1 " && echo "killed worker 1"
finish $D $pid; after 1 $D $?

echo "### 2. the MPS daemon killed mid-run"
D=$O/kill-daemon; "$B" compare --out $D --modes mps --workers 4 --no-solo --kernels 3000 > $D.summary 2> $D.stderr & pid=$!
sleep 4; pkill -9 -x nvidia-cuda-mps; echo "killed the daemon and the server"
finish $D $pid; after 2 $D $?

echo "### 3. a worker that never reaches the barrier (SIGSTOP before it arrives)"
D=$O/stuck-worker; "$B" compare --out $D --modes timeslice --workers 4 --no-solo --kernels 500 --barrier-timeout 5s > $D.summary 2> $D.stderr & pid=$!
for i in $(seq 50); do pkill -STOP -f -- "--worker-index 2 " && { echo "stopped worker 2"; break; }; sleep 0.02; done
finish $D $pid; after 3 $D $?

echo "### 4. a 49th MPS client"
P=/tmp/sb-limit; rm -rf $P $P-log; mkdir -p $P $P-log
pkill -9 -x nvidia-cuda-mps; sleep 0.5
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
mkdir -p $O/limit
for i in $(seq 0 48); do
  CUDA_MPS_PIPE_DIRECTORY=$P "$B" run --mode mps --blocks 1 --kernels 20 --workers 49 --worker-index $i \
    --barrier 127.0.0.1:7791 --barrier-listen 127.0.0.1:7791 --barrier-timeout 15s --out $O/limit/w$i.json \
    > /dev/null 2> $O/limit/w$i.log &
done
wait
echo "workers whose error names the limit: $(grep -l 'MPS client limit (48) reached' $O/limit/*.log | wc -l)"
grep -h -A2 'MPS client limit' $O/limit/*.log | head -3
echo "workers that wrote a result: $(ls $O/limit/*.json 2>/dev/null | wc -l)"
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control; sleep 3
pgrep -x nvidia-cuda-mps >/dev/null && echo "FAIL: daemon left" || echo "ok: no MPS daemon left"

echo "### 5. a GPU fault: blast radius under time-slicing and MPS"
D=$O/gpu-fault; "$B" compare --out $D --modes timeslice,mps --workers 4 --no-solo --kernels 2000 --inject-fault > $D.summary 2> $D.stderr & pid=$!
finish $D $pid; after 5 $D $?
