#!/usr/bin/env bash
# Both GPU test suites with the binaries in dist/ (the namespace suite with its output, for the SIGTERM timing),
# their transcripts under OUTDIR. Usage (repo root, as root): bash bench/device/gpu-tests.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=${SHAREBENCH_BIN:-$(readlink -f dist/sharebench)}
dist/gpu-tests --ignored --test-threads 1 > "$O/gpu-tests.txt" 2>&1; grep -E "^test |test result" "$O/gpu-tests.txt"
dist/gpu-namespaces-tests --ignored --test-threads 1 --nocapture > "$O/gpu-namespaces-tests.txt" 2>&1
grep -E "^test |test result|SIGTERM as pid 1|panicked" "$O/gpu-namespaces-tests.txt"
