#!/usr/bin/env bash
# `sharebench compare` on a real GPU: the default run (timed), then the reference cases of issue 4
# (closed loop, fma, 16/132/528 blocks of 256 threads, ~0.6 ms per kernel alone, 40 kernels per worker,
# 1/2/4/8 workers). Usage (repo root, release binary in dist/): bash bench/device/compare.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}
mkdir -p "$O"
echo "### default compare"
/usr/bin/time -f "default compare wall time: %e s" "$B" compare --out "$O/default" 2>&1 | grep -v '^\[.*\] .*kernels per worker'
# iters keep each kernel near 0.6 ms alone: one block per SM does 70000 iterations in 0.6 ms, so 528 blocks
# (4 per SM) do a quarter as many.
for cfg in "16 70000" "132 70000" "528 17500"; do
  set -- $cfg
  echo "### reference: $1 blocks x 256 threads, iters $2"
  "$B" compare --blocks "$1" --threads 256 --iters "$2" --kernels 40 --workers 1,2,4,8 --out "$O/ref-$1" 2>&1 | grep -v 'kernels per worker'
done
