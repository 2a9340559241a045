#!/usr/bin/env bash
# Issue 28 on the GPU machine, each PART within one call of at most 10 minutes:
#   compare: the LLM tenant (bench/tenants/llm.py) alone, then compare at 1, 2, 4 and 8 Pods, MPS against
#            time-slicing, 3 repeats of 10 s (tokens/s, TTFT and TPOT p99 with their intervals across repeats,
#            each against the solo run);
#   plan:    a plan (MPS, 8 requests/s, up to 4 Pods) under TTFT p99 1 s and TPOT p99 50 ms;
#   plan-mps, plan-timeslice: a plan of one mode over 1-8 Pods under MLPerf's TTFT/TPOT SLOs;
#   solo:    one Pod alone, 6 repeats per mode, unpinned and pinned to two vCPUs.
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
plan-mps|plan-timeslice)
  # One mode per 10-minute call, 1-8 Pods at 8 requests/s, under MLPerf's llama2-70b Server SLOs (TTFT 2 s,
  # TPOT 200 ms). Not yet run.
  mode=${PART#plan-}
  "$B" plan bench/scenarios/llm.toml --modes "$mode" --rate 8 --slo-p99 60000 --slo-ttft-p99 2000 --slo-tpot-p99 200 \
    --max-pods 8 --duration 8s --out "$O/plan-$mode" > "$O/plan-$mode.txt" 2>&1
  echo "plan exit=$?"; tail -8 "$O/plan-$mode.txt" ;;
solo)
  # One Pod alone, 6 repeats per mode, unpinned and then pinned to two vCPUs: does the per-token time follow the
  # host's CPU (results/h200/llm: TPOT p50 moved 3x between repeats)? Ran: results/h200/llm/solo-6x*.
  "$B" compare --modes timeslice,mps --workers 1 --repeat 6 --duration 10s --rate 4 --out "$O/solo" \
    --exec -- python3 bench/tenants/llm.py > "$O/solo.txt" 2>&1; echo "solo exit=$?"
  taskset -c 4,5 "$B" compare --modes timeslice,mps --workers 1 --repeat 6 --duration 10s --rate 4 \
    --out "$O/solo-pinned" --exec -- python3 bench/tenants/llm.py > "$O/solo-pinned.txt" 2>&1; echo "pinned exit=$?"
  grep -A6 "over the repeats" "$O/solo/report.md" "$O/solo-pinned/report.md" ;;
*) echo "PART must be compare, plan, plan-mps, plan-timeslice or solo" >&2; exit 2 ;;
esac
