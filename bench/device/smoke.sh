#!/usr/bin/env bash
# First contact with a GPU machine: identity, each kernel through `sharebench run`, and `sharebench calibrate`.
# Usage (repo root, release binary in dist/): bash bench/device/smoke.sh [OUTDIR]
set -u
BIN=${SHAREBENCH_BIN:-dist/sharebench}
OUT=${1:-${OUT:-/tmp/sharebench-smoke}}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode,clocks.sm,clocks.max.sm,power.limit --format=csv | tee "$OUT/nvidia-smi.csv"
for k in fma stream tiny; do
  echo "== run --kernel $k"
  "$BIN" run --kernel "$k" --kernels 50 --out "$OUT/run-$k.json" --force 2>&1
  echo "exit=$?"
done
echo "== run --duration 2s"
"$BIN" run --duration 2s --kernel tiny --out "$OUT/run-duration.json" --force 2>&1; echo "exit=$?"
echo "== run --mode streams --streams 4"
"$BIN" run --mode streams --streams 4 --kernels 40 --out "$OUT/run-streams.json" --force 2>&1; echo "exit=$?"
echo "== calibrate"
"$BIN" calibrate 2>&1; echo "exit=$?"
"$BIN" calibrate --json > "$OUT/calibrate.json" 2>&1
