#!/usr/bin/env bash
# GPU telemetry on the GPU machine: the sampler's cost (calibrate), the default compare and a plan with telemetry,
# and a deliberate foreign tenant (a separate CUDA process: CuPy in a busy loop) started beside a compare, which
# the report must flag and name. Usage (repo root, release binary and gpu-tests in dist/): bash bench/device/telemetry.sh OUT
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
echo "### gpu tests"; SHAREBENCH_BIN=$B dist/gpu-tests --ignored --test-threads 1 2>&1 | grep -E "^test |test result"
echo "### calibrate (telemetry sampler's cost on the recorded tiny loop)"; "$B" calibrate 2>&1 | tee "$O/calibrate.txt"
echo "### default compare"; "$B" compare --out "$O/compare-default" 2>&1 | tail -25
echo "### plan with telemetry"
"$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 4 --duration 3s --out "$O/plan-inference" 2>&1 | tail -14
echo "### a foreign tenant: CuPy busy on the GPU beside a compare"
python3 - > "$O/foreign.txt" 2>&1 <<'PY' &
import os, time, cupy
print("foreign tenant pid", os.getpid(), flush=True)
a = cupy.random.rand(4096, 4096, dtype=cupy.float32)
end = time.time() + 40
while time.time() < end:
    a = a @ a; a /= a.max(); cupy.cuda.Device().synchronize(); time.sleep(0.002)
PY
F=$!; sleep 6; cat "$O/foreign.txt"
"$B" compare --workers 2 --blocks 16 --kernels 400 --out "$O/compare-foreign" 2>&1 | tail -22
kill $F 2>/dev/null; wait $F 2>/dev/null
