#!/usr/bin/env bash
# The observer effect again, to explain its spread (issue 23): 6 repeats with the supervised/alone order
# alternating, the host's CPU topology, and where the tenants' threads ran (ps every 5 s).
# Usage (repo root, binaries in dist/): bash bench/device/observer-repeat.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
lscpu > "$O/lscpu.txt"; lscpu -e > "$O/lscpu-e.txt"
grep -E "^CPU\(s\)|Thread|Core|Socket|NUMA|Model name" "$O/lscpu.txt"
dist/gpu-namespaces-tests --ignored --test-threads 1 a_spinning > "$O/gpu-throttle-test.txt" 2>&1
grep -E "^test |test result" "$O/gpu-throttle-test.txt"
( while true; do echo "--- $(date +%s)"; ps -eo pid,psr,pcpu,nlwp,args --sort=psr | grep -E "resnet|sharebench run" | grep -v grep; sleep 5; done ) > "$O/placement.txt" 2>&1 &
watch=$!
"$SHAREBENCH_BIN" compare --modes mps --workers 8 --no-solo --repeat 6 --duration 10s --out "$O/observer" --force \
  --exec --observer-effect -- python3 bench/tenants/resnet.py --batch 1 > "$O/observer.txt" 2>&1
echo "compare exit=$?"
kill $watch
tail -6 "$O/observer.txt"
python3 bench/device/observer-values.py "$O/observer/observer-effect.json"
