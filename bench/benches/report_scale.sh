#!/usr/bin/env bash
# The report's scale benchmark: WORKERS synthetic results of KERNELS records each (default 64 x 200,000 = 12.8 M
# records, 391 MB), reported three times with every output written; prints wall time and peak RSS of each run and
# their medians. The inputs pass every check report applies (bench/tests/synth.rs), and CI runs this at
# 8 x 20,000, failing if report fails. Usage: bash bench/benches/report_scale.sh [WORKERS] [KERNELS]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-64}; K=${2:-200000}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
cargo build --release --quiet --example synth_results --bin sharebench
target/release/examples/synth_results "$D/in" "$W" "$K"
echo "inputs: $W files, $(du -sh "$D/in" | cut -f1), $((W * K)) kernels; $(nproc) cores"
: > "$D/runs"
for run in 1 2 3; do
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -o "$D/time" -f "%e %M" target/release/sharebench report "$D/in" --out "$D/out-$run" >/dev/null
    read -r wall kib < "$D/time"
    echo "run $run: $wall s wall, $kib KiB peak RSS"
    echo "$wall $kib" >> "$D/runs"
  else
    # Without GNU time (no peak RSS): the shell's own timer.
    TIMEFORMAT="run $run: %R s wall (peak RSS needs GNU time)"
    time target/release/sharebench report "$D/in" --out "$D/out-$run" >/dev/null
  fi
done
if [ -s "$D/runs" ]; then
  wall=$(cut -d' ' -f1 "$D/runs" | sort -n | sed -n 2p)
  kib=$(cut -d' ' -f2 "$D/runs" | sort -n | sed -n 2p)
  echo "median: $W x $K: $wall s wall, $((kib / 1024)) MiB peak RSS"
fi
