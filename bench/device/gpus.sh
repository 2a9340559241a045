#!/usr/bin/env bash
# Workers spread over GPUs (compare --gpus). On a machine with 2+ GPUs: the reference workload (16-block fma, 4
# workers) over GPUs 0,1 with one private MPS daemon per GPU and with one shared daemon. On any machine: the
# single-GPU paths the same code takes (the default compare, whose private daemon is now given its GPU through
# CUDA_VISIBLE_DEVICES; --gpus 0 with a shared daemon; ordinals through a CUDA_VISIBLE_DEVICES UUID) and the
# refusal of a GPU that does not exist.
# Run there (repo root, release binary in dist/): bash bench/device/gpus.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
nvidia-smi -L
n=$(nvidia-smi -L | grep -c '^GPU ')
W=(--workers 4 --blocks 16 --kernels 2000 --iters 70000)
table() { grep -E "^(run |workers|[0-9]|  [0-9]|warning|failed)" | cut -c1-200; }
if [ "$n" -ge 2 ]; then
  for daemons in per-gpu shared; do
    echo "### compare --gpus 0,1 --mps-daemons $daemons ${W[*]}"
    "$B" compare --gpus 0,1 --mps-daemons "$daemons" "${W[@]}" --out "$O/gpus-01-$daemons" 2>&1 | table
    echo "exit=${PIPESTATUS[0]}"
  done
  echo "### the same on one GPU, for reference"
  "$B" compare --gpus 0 "${W[@]}" --out "$O/gpus-0" 2>&1 | table
fi
echo "### default compare (one GPU, private daemon given GPU 0)"
"$B" compare --out "$O/compare-default" 2>&1 | table
echo "exit=${PIPESTATUS[0]} seconds=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["seconds"])' "$O/compare-default/compare.json")"
echo "### compare --gpus 0 --mps-daemons shared (2 workers)"
"$B" compare --gpus 0 --mps-daemons shared --workers 2 --blocks 16 --kernels 500 --out "$O/gpus-0-shared" 2>&1 | table
echo "### CUDA_VISIBLE_DEVICES=<UUID of GPU 0>: ordinal 0 means that GPU, the daemon is given the UUID"
uuid=$(nvidia-smi --query-gpu=uuid --format=csv,noheader | head -1)
CUDA_VISIBLE_DEVICES=$uuid "$B" compare --workers 2 --blocks 16 --kernels 500 --modes mps --no-solo \
  --out "$O/gpus-uuid" 2>&1 | grep -E "private MPS daemon|^[0-9]|warning|failed" | cut -c1-200
echo "### --gpus naming a GPU this machine does not have"
"$B" compare --gpus 0,$n --workers 2 --kernels 10 --out "$O/gpus-missing" 2>&1 | head -3
echo "exit=${PIPESTATUS[0]}"
sleep 1
pgrep -x nvidia-cuda-mps >/dev/null && echo "an MPS process is left: $(pgrep -a -x nvidia-cuda-mps)" || echo "no MPS process left"
