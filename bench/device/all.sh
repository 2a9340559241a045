#!/usr/bin/env bash
# One device session: GPU tests, calibration, check cases, compare runs. Writes logs and a tarball to $OUT.
# Usage: bash bench/device/all.sh  (repo root; dist/ holds the release binary and the gpu test binary)
set -u
OUT=${OUT:-/tmp/sharebench-device}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.csv"
echo "## gpu tests"; SHAREBENCH_BIN=dist/sharebench dist/gpu-tests --ignored --test-threads 1 2>&1 | tail -15
echo "## calibrate"; dist/sharebench calibrate 2>&1; dist/sharebench calibrate --json > "$OUT/calibrate.json" 2>&1
echo "## check cases"; bash bench/device/check-cases.sh > "$OUT/check-cases.txt" 2>&1; grep -E "^###|^verdict|^\(exit|refusing" "$OUT/check-cases.txt"
echo "## compare"; bash bench/device/compare.sh /tmp/sb-compare > "$OUT/compare.txt" 2>&1; tail -40 "$OUT/compare.txt"
tar -C /tmp -czf "$OUT/compare.tar.gz" sb-compare
