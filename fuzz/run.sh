#!/usr/bin/env bash
# Fuzzes the parsers for a bounded time each (default 60 s), seeded with real inputs from results/h100 and the
# MPS control texts recorded on the H100. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage: bash fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
mkdir -p corpus/result_parser corpus/mps_control_parser corpus/report_input corpus/barrier_parser
zcat ../results/h200/repeats/compare-default/results/results.jsonl.gz | grep -m1 '"mode":"mps"' | head -c 200000 > corpus/result_parser/h100-mps-worker.json
cp corpus/result_parser/h100-mps-worker.json corpus/report_input/
zcat ../results/h100/pod-isolation/pod-path/logs-mps.txt.gz | head -c 20000 > corpus/report_input/kubectl-logs.txt
printf 'READY 3 sharebench-3 workers=4 run=experiment-1 digest=0123456789abcdef\n' > corpus/barrier_parser/ready
printf 'Server not found\n' > corpus/mps_control_parser/no-server
printf 'PID ID SERVER DEVICE NAMESPACE COMMAND\n452 1 470 GPU-e370a465-49c4-8458 4026531836 python3\n' > corpus/mps_control_parser/table
printf 'Cannot find MPS control daemon process\n' > corpus/mps_control_parser/no-daemon
printf '[0] 00:00.0, NVIDIA H100 80GB HBM3\n452.1\n' > corpus/mps_control_parser/device-clients
for target in result_parser mps_control_parser report_input barrier_parser; do
  echo "== $target ($SECONDS_EACH s)"
  cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -max_len=262144 2>&1 | grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs|ERROR|panicked" || true
done
