#!/usr/bin/env bash
# Keeps results/ light (CI holds it under 15 MB) without losing a measurement: every report is regenerated from
# its worker results by the current binary (report.md embeds SVG charts), then what `sharebench report`
# regenerates and GitHub does not show is dropped (report.html, report.json, trace.json, PNG charts; a plan.html
# kept is kept: `sharebench plan-pages DIR` writes one again),
# and the raw worker results and logs are gzip-compressed (`sharebench report` reads *.json.gz as they are;
# logs: `zcat logs-mps.txt.gz | sharebench report -`). A plan point's pods.log keeps its log lines but not the
# result lines, which its results.jsonl holds already. Idempotent.
# Usage (repo root, after cargo build --release): bash bench/slim-results.sh [results]
set -eu
B=${SHAREBENCH_BIN:-target/release/sharebench}
R=${1:-results}
find "$R" -name report.md | while read -r md; do
  d=$(dirname "$md")
  if [ -d "$d/results" ]; then "$B" report "$d/results" --out "$d" --force --keep-going > /dev/null || true; fi
done
find "$R" -name plan.md -exec sed -i 's/(capacity\.png)/(capacity.svg)/' {} +
# Charts that are not regenerated (a plan's capacity.svg) are compacted as the binary now writes them.
find "$R" -name '*.svg' -exec sed -i 's/ opacity="1"//g' {} +
find "$R" -type f \( -name report.html -o -name report.json -o -name trace.json -o -name '*.png' \) ! -name report-page.png -delete
find "$R" -type f \( -name '*.json' -o -name '*.jsonl' \) -print0 | xargs -0 -r grep -l --null '"sharebench-result"' | xargs -0 -r gzip -9n
find "$R" -type f -name pods.log | while read -r log; do
  if [ -f "$(dirname "$log")/results.jsonl.gz" ] || [ -f "$(dirname "$log")/results.jsonl" ]; then
    grep -v '"format":"sharebench-result"' "$log" > "$log.tmp" || true
    mv "$log.tmp" "$log"
  fi
done
find "$R" -type f \( -name '*.log' -o -name 'logs-*.txt' -o -name 'pods.log' \) -print0 | xargs -0 -r gzip -9n
# Few files, not only few bytes (every file takes a block of its own): the worker results of one directory go into
# one results.jsonl.gz (one result a line; `sharebench report` reads it like the files), and each run's logs/
# folder into logs.tar.gz (`tar xzf logs.tar.gz` gives it back).
find "$R" -type f -name '*.json.gz' ! -name 'results.jsonl.gz' -printf '%h\n' | sort -u | while read -r d; do
  set -- "$d"/*.json.gz
  { [ -f "$d/results.jsonl.gz" ] && zcat "$d/results.jsonl.gz"; for f in "$@"; do zcat "$f"; echo; done; } \
    | grep -v '^$' | gzip -9n > "$d/results.jsonl.gz.tmp"
  mv "$d/results.jsonl.gz.tmp" "$d/results.jsonl.gz" && rm -f "$@"
done
find "$R" -type d -name logs | while read -r d; do
  (cd "$(dirname "$d")" && tar --sort=name --mtime=@0 --owner=0 --group=0 -czf logs.tar.gz logs && rm -rf logs)
done
# Worker logs lying beside their results (plan points, the flood runs) likewise, one logs.tar.gz a directory.
find "$R" -type f -name '*.log.gz' ! -name 'pods.log.gz' -printf '%h\n' | sort -u | while read -r d; do
  (cd "$d" && [ ! -f logs.tar.gz ] && tar --sort=name --mtime=@0 --owner=0 --group=0 -czf logs.tar.gz \
    $(find . -maxdepth 1 -name '*.log.gz' ! -name 'pods.log.gz' -printf '%f\n') \
    && find . -maxdepth 1 -name '*.log.gz' ! -name 'pods.log.gz' -delete)
done
# A plan's points: their logs (worker logs, a Kubernetes point's pods.log) go into one points-logs.tar.gz beside
# points/, not one small archive a point (each small file takes a disk block of its own); `tar xzf
# points-logs.tar.gz` gives back points/<point>/*.log.gz. Empty directories are removed (git does not keep them).
find "$R" -type d -name points | while read -r p; do
  plan=$(cd "$(dirname "$p")" && pwd); t=$(mktemp -d)
  [ -f "$plan/points-logs.tar.gz" ] && tar xzf "$plan/points-logs.tar.gz" -C "$t"
  for d in "$plan"/points/*/; do
    name=$(basename "$d")
    if [ -f "$d/logs.tar.gz" ]; then mkdir -p "$t/points/$name" && tar xzf "$d/logs.tar.gz" -C "$t/points/$name" && rm "$d/logs.tar.gz"; fi
    for f in "$d"*.log.gz; do
      if [ -f "$f" ]; then mkdir -p "$t/points/$name" && mv "$f" "$t/points/$name/"; fi
    done
  done
  if [ -d "$t/points" ]; then
    (cd "$t" && tar --sort=name --mtime=@0 --owner=0 --group=0 -czf "$plan/points-logs.tar.gz.tmp" points)
    mv "$plan/points-logs.tar.gz.tmp" "$plan/points-logs.tar.gz"
  fi
  rm -rf "$t"
done
find "$R" -mindepth 1 -type d -empty -delete
du -sh "$R"; du -sh --apparent-size "$R"
