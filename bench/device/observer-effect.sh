#!/usr/bin/env bash
# The observer effect (issue 23): the committed ResNet-50 tenant at 8 MPS Pods under sharebench (a supervising
# worker per Pod) against the same commands alone (compare starts them, no worker beside them), 3 repeats paired
# repeat by repeat. Any tenant works: put its command after `--`. Usage (repo root, release binary in dist/):
#   bash bench/device/observer-effect.sh OUTDIR [PODS [DURATION [-- COMMAND...]]]
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; PODS=${2:-8}; DURATION=${3:-10s}; shift $(( $# < 3 ? $# : 3 ))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || set -- python3 bench/tenants/resnet.py --batch 1
export PATH=/usr/local/nvidia/bin:$PATH
"$B" compare --modes mps --workers "$PODS" --no-solo --repeat 3 --duration "$DURATION" --out "$O" --force \
  --exec --observer-effect -- "$@"
echo "compare exit=$?"
