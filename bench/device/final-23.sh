#!/usr/bin/env bash
# Issue 23, last pass with the final binary: both GPU test suites (SIGTERM to a worker as pid 1 of a PID
# namespace with its timing printed; a spinning worker at 500m flagged, auto waiting blocking and not), and the
# observer effect at 8 MPS Pods, 3 repeats, now with the node's busy and stolen CPU shares recorded.
# Usage (repo root, binaries in dist/): bash bench/device/final-23.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
bash "$(dirname "$0")/gpu-tests.sh" "$O"
grep -E "^cpu " /proc/stat
timeout 300 bash "$(dirname "$0")/observer-effect.sh" "$O/observer" 8 10s > "$O/observer.txt" 2>&1
grep -E "^cpu " /proc/stat
tail -4 "$O/observer.txt"
python3 -c "
import json
for r in json.load(open('$O/observer/observer-effect.json')):
  print('sup', [round(v) for v in r['supervised_per_s']['values']], 'alone', [round(v) for v in r['alone_per_s']['values']])
  print('steal', r['node_steal_share'], 'busy', r['node_busy_share'])
"
