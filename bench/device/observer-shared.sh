#!/usr/bin/env bash
# The observer effect in a shared window (issue 23): 8 MPS Pods of the committed ResNet-50 tenant in each
# window, 4 supervised by a sharebench worker and 4 alone (alternate indices, swapped every repeat), so the GPU,
# the MPS daemon and the node are the same for both halves of a comparison (the paired design's window-to-window
# spread, CV ~10%, cancels). Both GPU suites first, with this binary. Any tenant works: put its command after
# `--`. Usage (repo root, binaries in dist/, as root):
#   bash bench/device/observer-shared.sh OUTDIR [REPEATS [-- COMMAND...]]
set -u
O=${1:?output directory}; R=${2:-10}; shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || set -- python3 bench/tenants/resnet.py --batch 1
mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode --format=csv > "$O/gpu.csv"
[ -n "${SKIP_GPU_TESTS:-}" ] || bash bench/device/gpu-tests.sh "$O"
"$SHAREBENCH_BIN" compare --modes mps --workers 8 --no-solo --repeat "$R" --duration 10s --out "$O/observer" --force \
  --exec --observer-effect -- "$@" > "$O/observer.txt" 2>&1
echo "compare exit=$?"
tail -6 "$O/observer.txt"
python3 bench/device/observer-values.py "$O/observer/observer-effect.json"
python3 bench/device/observer-pods.py "$O/observer"
