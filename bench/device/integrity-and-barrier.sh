#!/usr/bin/env bash
# Second device call of the PID-namespace / report-integrity / barrier work: GPU tests with the final binary,
# `plan --kubernetes` through the faithful Pod runner, the 132-block reference rerun, the barrier flood.
# Run there (repo root, as root; dist/ with sharebench, gpu-tests, gpu-namespaces-tests, kubectl.xz, pods-*.json;
# pyroute2 in .whl/): bash bench/device/integrity-and-barrier.sh OUT
set -u
O=${1:?output directory}; mkdir -p "$O"
echo "## gpu tests"
for t in gpu-tests gpu-namespaces-tests; do SHAREBENCH_BIN=dist/sharebench dist/$t --ignored --test-threads 1 2>&1 | grep -E "^test |test result"; done | tee "$O/gpu-tests.txt"
echo "## barrier flood"; bash bench/device/barrier-flood.sh "$O/barrier-flood" > "$O/barrier-flood.txt" 2>&1; cat "$O/barrier-flood.txt" | cut -c1-200
echo "## reference 132"; bash bench/device/reference-132.sh "$O/r132" > "$O/reference-132.txt" 2>&1; tail -30 "$O/reference-132.txt" | cut -c1-200
echo "## plan --kubernetes"; bash bench/device/plan-k8s.sh "$O/plan-k8s" > "$O/plan-k8s.txt" 2>&1; grep -vE "^\s*$" "$O/plan-k8s.txt" | tail -30 | cut -c1-220
