#!/usr/bin/env bash
# The observer effect with each Pod's tenant on cores of its own, as the static CPU manager places Guaranteed
# Pods (bench/tenants/pinned.sh: 2 cores a Pod), to test whether the run-to-run spread of the unpinned runs
# (observer/run1-3: CV 10-16%, all Pods moving together) comes from where the tenants' threads ran. ResNet-50
# batch 1, 8 MPS Pods, 10 s windows, REPEATS pairs, the supervised/alone order alternating; thread placement
# sampled every 5 s. Usage (repo root, binaries in dist/): bash bench/device/observer-pinned.sh OUTDIR [REPEATS]
set -u
O=${1:?output directory}; R=${2:-8}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
( while true; do echo "--- $(date +%s)"; ps -eLo pid,psr,pcpu,args --sort=psr | grep -E "resnet" | grep -v grep | awk '{print $1, $2, $3}' | sort -u -k2,2n | head -40; sleep 5; done ) > "$O/placement.txt" 2>&1 &
watch=$!
"$SHAREBENCH_BIN" compare --modes mps --workers 8 --no-solo --repeat "$R" --duration 10s --out "$O/observer" --force \
  --exec --observer-effect -- sh bench/tenants/pinned.sh python3 bench/tenants/resnet.py --batch 1 > "$O/observer.txt" 2>&1
echo "compare exit=$?"
kill $watch
tail -8 "$O/observer.txt"
python3 bench/device/observer-values.py "$O/observer/observer-effect.json"
