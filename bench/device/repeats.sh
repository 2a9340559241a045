#!/usr/bin/env bash
# Verdicts that survive a repeat, measured on the GPU (results/h200/repeats/):
#   steady : the default compare (3 repeats, timed: the README's "within 30 s"), the default with 5 repeats,
#            the same with a fresh private MPS daemon per repeat (does a fresh daemon change anything?), and
#            the 16-block reference sweep (1, 2, 4, 8 workers) with 5 repeats
#   plan   : the inference capacity plan with 3 repeats per point, settings interleaved
#   resnet : the ResNet-50 tenant (bench/tenants/resnet.py, batch 1, closed loop) at 4 and 8 Pods, 5 repeats
# Usage (repo root, as root, release binary in dist/): bash bench/device/repeats.sh STAGE OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
stage=${1:?stage}; O=${2:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
nvidia-smi --query-gpu=name,uuid,driver_version,clocks.sm,power.draw,memory.used,compute_mode --format=csv
timed() { # NAME CMD...: runs CMD, prints its wall time and exit code
  local name=$1; shift
  local t0=$(date +%s.%N)
  "$@" > "$O/$name.txt" 2>&1; local rc=$?
  local t1=$(date +%s.%N)
  echo "### $name: exit $rc, wall $(python3 -c "print(f'{$t1 - $t0:.1f}')") s"
  grep -A12 '^the answer' "$O/$name.txt" | head -14
}
case $stage in
steady)
  timed compare-default "$B" compare --out "$O/compare-default"
  timed compare-default-5 "$B" compare --repeat 5 --out "$O/compare-default-5"
  timed compare-fresh-daemon-5 "$B" compare --repeat 5 --fresh-mps-daemon --out "$O/compare-fresh-daemon-5"
  timed reference-16 "$B" compare --blocks 16 --workers 1,2,4,8 --repeat 5 --out "$O/reference-16" ;;
plan)
  timed plan-inference "$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 6 --duration 3s --repeat 3 \
    --out "$O/plan-inference"
  tail -n 25 "$O/plan-inference.txt" ;;
resnet)
  timed compare-resnet "$B" compare --workers 4,8 --no-solo --duration 5s --repeat 5 --out "$O/compare-resnet" \
    --exec -- python3 bench/tenants/resnet.py --batch 1 ;;
esac
echo "### stage $stage done"; pgrep -a nvidia-cuda-mps || echo "no MPS left"
