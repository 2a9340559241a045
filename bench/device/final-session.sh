#!/usr/bin/env bash
# The GPU tests with this session's final binary, and one short real compare through the new lifecycle (kernels and
# a tenant command, with its observer-effect baseline), as a last check on the H200.
# Usage (repo root, binaries in dist/): bash bench/device/final-session.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
bash "$(dirname "$0")/gpu-tests.sh" "$O"
"$SHAREBENCH_BIN" compare -w 2 -m timeslice,mps --repeat 2 -d 2s -o "$O/tenant" --exec --observer-effect \
  -- python3 bench/tenants/minimal.py > "$O/tenant.txt" 2>&1
echo "compare --exec --observer-effect exit=$?"; tail -8 "$O/tenant.txt"
