#!/usr/bin/env bash
# The report's scale target: 64 workers x 200,000 kernels (12.8 M records) in at most 3 s and 1.5 GiB.
# Usage: bash bench/benches/report_scale.sh [WORKERS] [KERNELS]
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-64}; K=${2:-200000}
D=$(mktemp -d)
cargo build --release --quiet --example synth_results --bin sharebench
target/release/examples/synth_results "$D/in" "$W" "$K"
echo "inputs: $W files, $(du -sh "$D/in" | cut -f1), $((W * K)) kernels; $(nproc) cores"
for run in 1 2 3; do
  /usr/bin/time -f "run $run: %e s wall, %M KiB peak RSS" target/release/sharebench report "$D/in" --out "$D/out-$run" >/dev/null
done
rm -rf "$D"
