#!/usr/bin/env bash
# The 132-block reference case with enough kernels to trust the 8-worker MPS point (it was measured with 40 per
# worker): fma 132x256, 400 kernels per worker, 2, 4 and 8 workers; then the 8-worker point twice more.
# Usage (repo root, release binary in dist/): bash bench/device/reference-132.sh OUT
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
"$B" compare --blocks 132 --threads 256 --iters 70000 --kernels 400 --workers 2,4,8 --out "$O/reference-132" 2>&1 | tail -20
for r in 2 3; do
  "$B" compare --blocks 132 --threads 256 --iters 70000 --kernels 400 --workers 8 --out "$O/reference-132-w8-repeat$r" 2>&1 | grep -E "x|mps|timeslice|streams" | tail -8
done
