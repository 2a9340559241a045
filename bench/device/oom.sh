#!/usr/bin/env bash
# A Pod's memory limit staged as kubelet stages it (cgroup v2 memory.max, limits.memory 1Gi): a worker whose tenant
# command, once measured, takes host memory 256 MiB at a time until the kernel's OOM killer ends it. The worker
# survives (the killer takes the largest process of the cgroup), writes what the command reported, and the result
# holds the OOM kill in its host conditions; `report` flags it. Usage: bash bench/device/oom.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps
. "$(dirname "$0")/cgroup-lib.sh"; cgroup_setup || exit 1
cat > "$O/greedy.py" <<'PY'
import os, time
report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)
print("ready", file=report)
start_file = os.environ["SHAREBENCH_START_FILE"]
while not os.path.exists(start_file):
    time.sleep(0.01)
held = []
while True:  # a request per 256 MiB taken and touched, until the OOM killer ends it
    begin = time.time_ns()
    held.append(bytearray(256 << 20))
    print(f"request latency_ms={(time.time_ns() - begin) / 1e6:.3f} start_ns={begin}", file=report)
    time.sleep(0.2)
PY
in_cgroup oom "max 100000" $((1 << 30)) "$B" run --mode timeslice --duration 4s --out "$O/oom.json" \
  --exec -- python3 "$O/greedy.py" 2> "$O/oom.log"
echo "worker exit=$?"
cgroup_stat oom
cgroup_cleanup
python3 -c "import json; r=json.load(open('$O/oom.json')); print('status:', r['status']); print('host_conditions:', r['host_conditions']); t=r['tenant']; print('tenant ending:', t['ending'], t['exit_status'], 'requests in window:', t['requests_in_window'])"
"$B" report "$O/oom.json" --out "$O/report" > "$O/report.txt" 2>&1
grep -iE "oom|memory" "$O/report.txt" | head -5
