#!/usr/bin/env bash
# Issue 27 on the GPU machine: what a context may use of the GPU's memory, what a greedy or faulting neighbour
# does to a victim in each mode, with and without an MPS memory limit, and the SM share a Pod gets for the one it
# asks. Everything under OUTDIR; one report of it all at the end (its Isolation and SM share sections).
# Usage (repo root, binaries in dist/, as root): bash bench/device/isolation.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O/share"
export PATH=/usr/local/nvidia/bin:$PATH
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode,memory.total --format=csv > "$O/gpu.csv"
# A private daemon for the check and the share runs (its own pipe and log directories).
export CUDA_MPS_PIPE_DIRECTORY=$(mktemp -d /tmp/sb-iso-pipe.XXXX) CUDA_MPS_LOG_DIRECTORY=$(mktemp -d /tmp/sb-iso-log.XXXX)
nvidia-cuda-mps-control -d
trap 'echo quit | nvidia-cuda-mps-control; rm -rf "$CUDA_MPS_PIPE_DIRECTORY"' EXIT
echo "### check: the memory a client may use, with and without a limit"
"$B" check --expect mps > "$O/check-unlimited.txt" 2>&1; grep memory "$O/check-unlimited.txt"
CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=8G "$B" check --expect mps > "$O/check-8G.txt" 2>&1; grep memory "$O/check-8G.txt"
# The daemon's default binds servers started after it is set: a fresh daemon, the default, then a client.
echo quit | nvidia-cuda-mps-control; sleep 1; nvidia-cuda-mps-control -d
echo 'set_default_device_pinned_mem_limit 0 4G' | nvidia-cuda-mps-control
"$B" check --expect mps > "$O/check-daemon-4G.txt" 2>&1; grep memory "$O/check-daemon-4G.txt"
echo 'set_default_device_pinned_mem_limit 0 0' | nvidia-cuda-mps-control
echo "### SM share: a lone Pod at 25, 50 and 100% (and time-slicing at 100%), 3 s each"
for pct in 25 50 100; do
  CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=$pct "$B" run --mode mps --blocks 132 --iters 70000 --duration 3s \
    --run-id "lone-mps-$pct" --out "$O/share/lone-mps-$pct.json" 2>&1 | tail -1
done
# Time-slicing needs a pipe directory no daemon listens in (with the daemon's, the worker would join it).
CUDA_MPS_PIPE_DIRECTORY=$(mktemp -d /tmp/sb-iso-none.XXXX) "$B" run --mode timeslice --blocks 132 --iters 70000 \
  --duration 3s --run-id lone-full --out "$O/share/lone-full.json" 2>&1 | tail -1
echo "### after a fault under MPS: when is a new client admitted again?"
# A worker faults after 3000 kernels while a new client is tried every 50 ms (each line: Unix ns, exit code);
# the worker's result gives the fault's time.
"$B" run --mode mps --kernel tiny --kernels 20000 --inject-fault-after 3000 --out "$O/share/faulty.json" \
  > "$O/faulty.txt" 2>&1 &
faulty=$!
while kill -0 "$faulty" 2>/dev/null || [ "$(wc -l < "$O/admission.txt" 2>/dev/null || echo 0)" -lt 40 ]; do
  "$B" check --expect mps > /dev/null 2>&1; echo "$(date +%s%N) $?" >> "$O/admission.txt"; sleep 0.05
done
wait "$faulty"; echo "faulty worker exit=$?; $(wc -l < "$O/admission.txt") checks, failed: $(grep -vc ' 0$' "$O/admission.txt")"
# Each line's time is when its check ended; a check takes about as long as the gap between two ends.
python3 - "$O/share/faulty.json" "$O/admission.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
end = r["finished_unix_ns"]  # the faulting worker got its error and ended
checks = [tuple(map(int, l.split())) for l in open(sys.argv[2])]
ends = [t for t, _ in checks]
gap = sorted(b - a for a, b in zip(ends, ends[1:]))[len(ends) // 2] if len(ends) > 1 else 0
after = [(t, rc) for t, rc in checks if t - gap > end]  # started after the faulting worker ended
print(f"the faulting worker ended {(end - r['started_unix_ns']) / 1e6:.0f} ms after it started; checks every ~{gap / 1e6:.0f} ms")
if after:
    t, rc = after[0]
    print(f"first check started after it: ended {(t - end) / 1e6:.0f} ms after, {'admitted' if rc == 0 else f'refused (exit {rc})'}")
print(f"refused: {sum(1 for _, rc in checks if rc != 0)} of {len(checks)}")
PY
echo quit | nvidia-cuda-mps-control; trap - EXIT
# The plans start private daemons of their own.
unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
echo "### isolation plans: victim beside a greedy (unlimited, limited) and a faulting neighbour, both modes"
for s in isolation-memory isolation-memory-limited isolation-fault; do
  "$B" plan "bench/scenarios/$s.toml" --slo-p99 5 --max-pods 1 --duration 5s --out "$O/$s" > "$O/$s.txt" 2>&1
  echo "$s: exit $?"; tail -3 "$O/$s.txt"
done
"$B" report "$O" --keep-going --out "$O/report" > "$O/report.txt" 2>&1; echo "report exit=$?"
sed -n '/^## SM share/,/^## [A-Z]/p;/^## Isolation/,/^## Loading/p' "$O/report/report.md" | head -80
