#!/usr/bin/env bash
# The session of issue 26 (report speed) on the GPU machine: both GPU test suites with this session's binary,
# then a default compare with 2 repeats, reported again by `report` (timed) the way a user would. Everything
# under OUTDIR. Usage (repo root, binaries in dist/, as root): bash bench/device/session-26.sh OUTDIR
set -u
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
nvidia-smi --query-gpu=name,uuid,driver_version,compute_mode --format=csv > "$O/gpu.csv"
bash bench/device/gpu-tests.sh "$O"
"$SHAREBENCH_BIN" compare --repeat 2 --out "$O/compare" --force > "$O/compare.txt" 2>&1
echo "compare exit=$?"
tail -25 "$O/compare.txt"
/usr/bin/time -f "report: %e s wall, %M KiB peak RSS" "$SHAREBENCH_BIN" report "$O/compare/results" --out "$O/report" \
  > "$O/report.txt" 2> "$O/report-time.txt"
echo "report exit=$?"; cat "$O/report-time.txt"; tail -2 "$O/report.txt"
