#!/usr/bin/env bash
# Issue 28 on the GPU machine: the LLM tenant (bench/tenants/llm.py) alone, then compare at 1, 2, 4 and 8 Pods,
# MPS against time-slicing, 3 repeats (tokens/s, TTFT and TPOT p99 with their intervals across repeats, each
# against the solo run), then a plan under the TTFT/TPOT SLOs of bench/scenarios/llm.toml. Everything under
# OUTDIR. Usage (repo root, binaries in dist/, as root): bash bench/device/llm.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
echo "### one Pod alone, closed loop of 4, 20 s"
"$B" run --mode timeslice --duration 20s --out "$O/alone.json" --exec -- python3 bench/tenants/llm.py 2>&1 | tail -2
echo "### compare, 1/2/4/8 Pods, Poisson 4 requests/s per Pod, 3 repeats of 20 s"
"$B" compare --modes timeslice,mps --workers 1,2,4,8 --repeat 3 --duration 20s --rate 4 --out "$O/compare" \
  --exec -- python3 bench/tenants/llm.py > "$O/compare.txt" 2>&1
echo "compare exit=$?"; grep -A12 "Streamed requests" "$O/compare/report.md" | head -30
echo "### plan under TTFT p99 500 ms and TPOT p99 50 ms"
"$B" plan bench/scenarios/llm.toml --slo-p99 60000 --max-pods 12 --duration 20s --out "$O/plan" > "$O/plan.txt" 2>&1
echo "plan exit=$?"; tail -6 "$O/plan.txt"
