#!/usr/bin/env bash
# Capacity plans on a real GPU: the inference scenario and the noisy-neighbour scenario.
# Usage (repo root, release binary in dist/): bash bench/device/plan.sh OUTDIR   (PLAN_ONLY=rate, mix or knobs: one plan only)
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
if [ -z "${PLAN_ONLY:-}" ]; then
echo "### plan: inference, SLO p99 5 ms"
"$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 24 --duration 4s --out "$O/plan-inference" 2>&1 | grep -v "kernels per worker"
echo "### plan: noisy neighbour, SLO p99 4 ms"
"$B" plan bench/scenarios/noisy-neighbour.toml --slo-p99 4 --max-pods 8 --duration 3s --out "$O/plan-noisy" 2>&1 | grep -v "kernels per worker"
fi
if [ "${PLAN_ONLY:-}" = rate ] || [ -z "${PLAN_ONLY:-}" ]; then
echo "### plan: the highest rate per Pod at 4 inference Pods, SLO p99 5 ms"
"$B" plan bench/scenarios/inference.toml --slo-p99 5 --search rate --pods 4 --duration 3s --out "$O/plan-rate" 2>&1 | grep -v "kernels per worker"
fi
[ "${PLAN_ONLY:-}" = rate ] && exit 0
if [ "${PLAN_ONLY:-}" = mix ] || [ -z "${PLAN_ONLY:-}" ]; then
echo "### plan: compute/memory mix, SLO p99 5 ms"
"$B" plan bench/scenarios/compute-memory-mix.toml --slo-p99 5 --max-pods 12 --duration 3s --out "$O/plan-mix" 2>&1 | grep -v "kernels per worker"
fi
[ "${PLAN_ONLY:-}" = mix ] && exit 0
echo "### plan: noisy neighbour with the MPS knob swept and the blast radius, SLO p99 4 ms"
"$B" plan bench/scenarios/noisy-neighbour.toml --slo-p99 4 --max-pods 4 --duration 3s --atp 25,50,100 --inject-fault \
  --out "$O/plan-noisy-knobs" 2>&1 | grep -v "kernels per worker"
