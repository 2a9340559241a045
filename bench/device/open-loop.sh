#!/usr/bin/env bash
# Open-loop load on a real GPU: one worker at rising Poisson rates (queueing shows in the tail once the rate nears
# capacity), then 4 workers at 400 requests/s each under time-slicing and under MPS.
# Usage (repo root, release binary in dist/): bash bench/device/open-loop.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
for rate in 400 800 1200 1500 2000; do
  CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-none "$B" run --mode timeslice --blocks 16 --kernels 2000 --rate $rate \
    --out "$O/solo-$rate.json" --force 2>&1 | sed "s/^/rate $rate: /"
done
"$B" compare --modes timeslice,mps --workers 4 --no-solo --blocks 16 --kernels 2000 --rate 400 --out "$O/compare-400" 2>&1 \
  | grep -E "^(workers|[0-9]|  4 workers)" | cut -c1-200
