#!/usr/bin/env bash
# Ctrl-C during `sharebench compare`: the workers are told to stop (SIGTERM) and keep what they recorded, the private
# MPS daemon is stopped, the run directory is
# marked incomplete, the exit code says so. Usage (repo root, release binary in dist/): bash bench/device/interrupt.sh
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
D=/tmp/sb-interrupt; rm -rf "$D"
"$B" compare --modes mps,timeslice --duration 20s --workers 2 --out "$D" &
pid=$!
sleep 6
echo "sending SIGINT to compare (pid $pid)"
kill -INT "$pid"
wait "$pid"; echo "compare exit=$?"
sleep 1
if pgrep -f nvidia-cuda-mps-control >/dev/null; then echo "FAIL: an MPS daemon is still running"; else echo "ok: no MPS daemon left running"; fi
if pgrep -f "sharebench run" >/dev/null; then echo "FAIL: workers still running"; else echo "ok: no worker left running"; fi
ls "$D"; cat "$D/INCOMPLETE" 2>/dev/null; python3 -c "import json;d=json.load(open('$D/compare.json'));print('complete:',d['complete'],'interrupted:',d['interrupted'],[(p['mode'],p['workers'],p['complete']) for p in d['phases']])"
# What the workers kept: each wrote what it recorded, marked terminated (SIGTERM from compare).
python3 - "$D" <<'PY'
import glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/results/*.json")):
    r = json.load(open(f))
    print(f.split("/")[-1], "complete:", r["status"]["complete"], "terminated:", r["status"].get("terminated"),
          "kernels:", sum(l["kernels"] for l in r["lanes"]))
PY
"$B" report "$D/results" | sed -n '/the answer/,/^$/p'
