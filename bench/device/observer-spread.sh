#!/usr/bin/env bash
# What moves with the observer runs' spread: REPEATS supervised phases of ResNet-50 batch 1 at 8 MPS Pods (10 s
# windows), each repeat's requests/s beside its GPU conditions (NVML: SM clock range, GPU busy, peak power,
# throttle reasons) and the tenants' own figures, as a table; further arguments go to compare (e.g.
# --fresh-mps-daemon). Usage (repo root, binaries in dist/):
# bash bench/device/observer-spread.sh OUTDIR [REPEATS [COMPARE FLAGS...]]
set -u
O=${1:?output directory}; R=${2:-6}; shift 2 2>/dev/null || shift $#; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH SHAREBENCH_BIN=$(readlink -f dist/sharebench)
"$SHAREBENCH_BIN" compare --modes mps --workers 8 --no-solo --repeat "$R" --duration 10s --out "$O/spread" --force \
  "$@" --exec -- python3 bench/tenants/resnet.py --batch 1 > "$O/spread.txt" 2>&1
echo "compare exit=$?"
python3 - "$O/spread/report.json" <<'PY' | tee "$O/spread-table.md"
import json, sys
r = json.load(open(sys.argv[1]))
print("| repeat | req/s | p99 ms | SM MHz (min-max) | GPU busy | peak W | slowdowns | fairness |")
print("|---|---|---|---|---|---|---|---|")
for g in sorted((g for g in r["groups"] if g["key"]["workers"] == 8), key=lambda g: g["repeat"]):
    c = g.get("conditions") or {}
    mhz = c.get("sm_mhz")
    print("| %d | %.0f | %.2f | %s | %s | %s | %s | %.3f |" % (
        g["repeat"] + 1, g["kernels_per_s"]["value"], g["latency"]["p99_ns"] / 1e6,
        "%d-%d" % tuple(mhz) if mhz else "?", "%.0f%%" % c["gpu_busy_pct"] if c.get("gpu_busy_pct") is not None else "?",
        c.get("max_power_w"), ", ".join("%s x%d" % tuple(s) for s in c.get("slowdowns", [])) or "none", g["fairness_jain"]))
PY
