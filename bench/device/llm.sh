#!/usr/bin/env bash
# Issue 28 on the GPU machine, in two calls of at most 10 minutes each (PART: compare or plan):
#   compare: the LLM tenant (bench/tenants/llm.py) alone, then compare at 1, 2, 4 and 8 Pods, MPS against
#            time-slicing, 3 repeats of 10 s (tokens/s, TTFT and TPOT p99 with their intervals across repeats,
#            each against the solo run);
#   plan:    a plan under the TTFT/TPOT SLOs of bench/scenarios/llm.toml.
# Everything under OUTDIR. Usage (repo root, binaries in dist/, as root): bash bench/device/llm.sh OUTDIR PART
set -u
O=${1:?output directory}; PART=${2:?compare or plan}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
case "$PART" in
compare)
  echo "### one Pod alone, closed loop of 4, 10 s"
  "$B" run --mode timeslice --duration 10s --out "$O/alone.json" --exec -- python3 bench/tenants/llm.py 2>&1 | tail -2
  echo "### compare, 1/2/4/8 Pods, Poisson 4 requests/s per Pod, 3 repeats of 10 s"
  "$B" compare --modes timeslice,mps --workers 1,2,4,8 --repeat 3 --duration 10s --rate 4 --out "$O/compare" \
    --exec -- python3 bench/tenants/llm.py > "$O/compare.txt" 2>&1
  echo "compare exit=$?"; grep -A14 "Streamed requests" "$O/compare/report.md" | head -40 ;;
plan)
  # A p99 bound needs 368 requests in every repeat: at 8 requests/s one Pod's point runs 60 s (at 4/s it would
  # need 92 s or more: --max-point-duration). MPS only, up to 4 Pods: what one 10-minute call holds.
  echo "### plan (MPS) under TTFT p99 1 s and TPOT p99 50 ms, 8 requests/s per Pod"
  "$B" plan bench/scenarios/llm.toml --modes mps --rate 8 --slo-p99 60000 --slo-ttft-p99 1000 --slo-tpot-p99 50 \
    --max-pods 4 --duration 8s --out "$O/plan" > "$O/plan.txt" 2>&1
  echo "plan exit=$?"; tail -8 "$O/plan.txt" ;;
*) echo "PART must be compare or plan" >&2; exit 2 ;;
esac
