#!/usr/bin/env bash
# The start barrier under a flood (junk connections, stale workers of another run, over-long lines) during a
# 4-worker run started as a Job's Pods start it (worker 0 serves the barrier on 127.0.0.1:7777): the real
# workers must all be admitted, and their throughput must stay within the run-to-run noise of unflooded runs.
# Two runs without and two with the flood, alternating. Usage (repo root, release binary in dist/): bash
# bench/device/barrier-flood.sh OUT
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
E=/tmp/sb-flood-empty; mkdir -p $E
job() {  # $1: run id; 4 workers as a Job's Pods: the same arguments, worker 0 serves the barrier
  local pids=()
  for i in 0 1 2 3; do
    CUDA_MPS_PIPE_DIRECTORY=$E JOB_COMPLETION_INDEX=$i "$B" run --mode timeslice --workers 4 --run-id "$1" \
      --barrier 127.0.0.1:7777 --barrier-listen 127.0.0.1:7777 --barrier-timeout 60s \
      --kernel fma --blocks 16 --kernels 2000 > "$O/$1-w$i.json" 2> "$O/$1-w$i.log" &
    pids+=($!)
  done
  wait "${pids[@]}"
}
for round in 1 2; do
  echo "### round $round: no flood"; job "quiet-$round"
  echo "### round $round: flood from 1 s before the workers start to 6 s after"
  python3 bench/device/barrier-flood.py 127.0.0.1:7777 14 "flood-$round" > "$O/flood-$round.txt" 2>&1 &
  F=$!; sleep 1; job "flood-$round"; wait $F; cat "$O/flood-$round.txt"
  grep -h "barrier" "$O/flood-$round-w0.log" | head -8
done
"$B" report "$O" 2>&1 | grep -E "^(run|workers|4 |note|warning)" | cut -c1-160
