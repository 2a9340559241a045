#!/usr/bin/env bash
# Everything the PID-namespace work needs on the GPU machine, in one call: the GPU tests (gpu, gpu_namespaces),
# the check cases in Pod namespaces, the pod path and `plan --kubernetes` through the faithful Pod runner.
# Prepare here: cargo build --release && cargo test --release --no-run; copy the binaries to dist/ (sharebench,
#   gpu-tests, gpu-namespaces-tests); bash bench/device/pod-path.sh --render; bash bench/device/plan-k8s.sh --prepare
# Run there (repo root, as root): bash bench/device/pod-isolation.sh OUT
set -u
O=${1:?output directory}; mkdir -p "$O"
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode --format=csv | tee "$O/gpu.csv"
echo "## gpu tests"
for t in gpu-tests gpu-namespaces-tests; do SHAREBENCH_BIN=dist/sharebench dist/$t --ignored --test-threads 1 2>&1 | tail -12; done | tee "$O/gpu-tests.txt"
echo "## check in Pod namespaces"; bash bench/device/check-pod-cases.sh > "$O/check-pod-cases.txt" 2>&1
grep -E "^###|^verdict|^\(exit|joined|NOT|could not|result:" "$O/check-pod-cases.txt" | cut -c1-220
echo "## pod path"; bash bench/device/pod-path.sh "$O/pod-path" > "$O/pod-path.txt" 2>&1; tail -45 "$O/pod-path.txt" | cut -c1-220
if [ -z "${SKIP_PLAN:-}" ]; then
  echo "## plan --kubernetes"; bash bench/device/plan-k8s.sh "$O/plan-k8s" > "$O/plan-k8s.txt" 2>&1; grep -vE "^\s*$" "$O/plan-k8s.txt" | tail -40 | cut -c1-220
fi
