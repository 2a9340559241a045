#!/usr/bin/env bash
# `run --exec` on the GPU: the GPU tests with a real CUDA child (joined under MPS, in the node's and in a Pod's
# PID namespace; a silent fallback refused; time-slicing verified), then a short compare of the ResNet tenant.
# Usage (repo root, as root, binaries in dist/): bash bench/device/tenants-check.sh
set -u
export SHAREBENCH_BIN=$(readlink -f dist/sharebench) PATH=/usr/local/nvidia/bin:$PATH
OUT=${OUT:-/tmp/sb-out}; mkdir -p "$OUT"
echo "### GPU tests (command as workload)"
dist/gpu-tests --ignored --test-threads 1 command 2>&1 | tail -8
dist/gpu-namespaces-tests --ignored --test-threads 1 command 2>&1 | tail -6
echo "### compare --exec, ResNet-50 batch 1, 2 workers, 10 s windows"
dist/sharebench compare --workers 2 --duration 10s --out "$OUT/compare-resnet-2" \
  --exec -- python3 bench/tenants/resnet.py --batch 1 2>&1 | tail -40
echo "exit=$?"
