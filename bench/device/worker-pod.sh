#!/usr/bin/env bash
# Issue 23 on the GPU machine in one call: the GPU's settings as sharebench reads them, the scheduling-mode
# measurement (sync.sh), an OOM kill staged (oom.sh), the GPU tests (SIGTERM to a worker as pid 1 of a PID
# namespace, a throttled worker flagged), and the observer effect at 8 MPS Pods (observer-effect.sh).
# Usage (repo root, as root, binaries in dist/): bash bench/device/worker-pod.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
D=$(dirname "$0")
{ nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode,mig.mode.current --format=csv
  echo "--- nvidia-smi compute-policy -l"; nvidia-smi compute-policy -l 2>&1 | head -20; } > "$O/gpu-settings.txt" 2>&1
cat "$O/gpu-settings.txt"
echo "=== sync"; time bash "$D/sync.sh" "$O/sync" > "$O/sync.txt" 2>&1; tail -25 "$O/sync.txt"
echo "=== oom"; bash "$D/oom.sh" "$O/oom" > "$O/oom.txt" 2>&1; tail -8 "$O/oom.txt"
echo "=== gpu tests"
bash "$D/gpu-tests.sh" "$O"
echo "=== observer effect"
time timeout 420 bash "$D/observer-effect.sh" "$O/observer" 8 10s > "$O/observer.txt" 2>&1; tail -14 "$O/observer.txt"
