#!/usr/bin/env bash
# Why a lone blocking worker under a 500m limit is sometimes throttled for one CFS period (issue 23 finding):
# five 2 s runs with worker 0's NVML telemetry on, five with it off, each in a Pod-like cgroup (cpu.max 50000
# 100000); prints each run's throttled periods and seconds and the worker's CPU.
# Usage (repo root, as root, binaries in dist/): bash bench/device/blocking-burst.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps
. "$(dirname "$0")/cgroup-lib.sh"; cgroup_setup || exit 1
for telemetry in on off; do
  for i in 1 2 3 4 5; do
    in_cgroup "burst-$telemetry-$i" "50000 100000" max "$B" run --mode timeslice --kernel fma --blocks 16 \
      --duration 2s --telemetry "$telemetry" --out "$O/$telemetry-$i.json" 2> "$O/$telemetry-$i.log"
  done
done
cgroup_cleanup
python3 - "$O" <<'PY'
import glob, json, sys
for t in ["on", "off"]:
    for f in sorted(glob.glob(f"{sys.argv[1]}/{t}-*.json")):
        h = json.load(open(f))["host_conditions"]
        print(f"telemetry {t}: throttled {h['throttled_periods']} period(s), {h['throttled_s']:.3f} s of {h['window_s']:.2f} s; worker CPU {h['worker_cpu_s']/h['window_s']:.3f}")
PY
