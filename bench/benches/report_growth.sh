#!/usr/bin/env bash
# How report's time and memory grow with workers and with kernels: the scale benchmark (report_scale.sh, median
# of 3) at four sizes, as a Markdown table (the README's). Kernels grow 4x at 64 workers, workers grow 4x at the
# same 12.8 M kernels. DIVISOR shrinks every size (CI runs it at 100 so that the script cannot rot).
# Usage: bash bench/benches/report_growth.sh [DIVISOR]
set -euo pipefail
cd "$(dirname "$0")/../.."
DIV=${1:-1}
echo "| workers | kernels each | kernels | input | wall (median of 3) | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|"
for size in "16 200000" "64 50000" "64 200000" "256 50000"; do
  set -- $size
  W=$1; K=$(($2 / DIV))
  out=$(bash bench/benches/report_scale.sh "$W" "$K")
  input=$(sed -n 's/^inputs: [0-9]* files, \([^,]*\),.*/\1/p' <<< "$out")
  median=$(sed -n 's/^median: [^:]*: \(.*\) s wall, \(.*\) peak RSS$/\1 s | \2/p' <<< "$out")
  echo "| $W | $K | $((W * K)) | $input | ${median:-?} |"
done
echo
echo "($(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"
