#!/usr/bin/env bash
# A results tree COPIES times the committed one (results/, each copy's run ids made its own so nothing is a
# duplicate), reported as one with every output written: wall time, peak RSS, files written and their size.
# CI runs it at 1 copy (the committed tree itself). Usage: bash bench/benches/report_tree.sh [COPIES]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-10}
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
cargo build --release --quiet --bin sharebench
mkdir -p "$D/tree"
for k in $(seq 1 "$N"); do
  cp -r results "$D/tree/copy-$k"
  if [ "$N" -gt 1 ]; then
    grep -rlZ --include='*.json' --include='*.jsonl' '"sharebench-result"' "$D/tree/copy-$k" \
      | xargs -0 -r sed -i "s/\"run_id\":\"\([^\"]*\)\"/\"run_id\":\"\1-copy$k\"/g"  || true
    find "$D/tree/copy-$k" -name '*.json.gz' -o -name '*.jsonl.gz' | while read -r f; do
      zcat "$f" | sed "s/\"run_id\":\"\([^\"]*\)\"/\"run_id\":\"\1-copy$k\"/g" | gzip -1 > "$f.tmp" && mv "$f.tmp" "$f"
    done
  fi
done
echo "inputs: $N cop$([ "$N" = 1 ] && echo y || echo ies) of results/, $(du -sh "$D/tree" | cut -f1), $(nproc) cores"
rc=0
/usr/bin/time -o "$D/time" -f "%e %M" target/release/sharebench report "$D/tree" --out "$D/out" --keep-going \
  > "$D/summary.txt" 2> "$D/stderr.txt" || rc=$?
# Exit 5: some committed runs are incomplete on purpose (the fault runs); anything else is a failure.
if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then cat "$D/stderr.txt"; exit "$rc"; fi
read -r wall kib < <(tail -1 "$D/time")
echo "report: $wall s wall, $((kib / 1024)) MiB peak RSS; $(grep -c '' "$D/summary.txt") lines on the terminal"
echo "wrote: $(find "$D/out" -type f | wc -l) files, $(du -sh "$D/out" | cut -f1) (report.html $(du -h "$D/out/report.html" | cut -f1), report.md $(du -h "$D/out/report.md" | cut -f1))"
tail -1 "$D/summary.txt" | cut -c1-300
