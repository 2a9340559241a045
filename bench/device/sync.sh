#!/usr/bin/env bash
# How a kernel worker should wait for its GPU (issue 23): the latency and the CPU cost of CUDA's scheduling choices
# (--sync spin, yield, blocking) for one worker with the CPUs it wants, and for four time-sliced workers each under
# a Pod's CPU limit of 500m (cgroup v2 cpu.max 50000 100000, as kubelet writes it), where `auto` must choose.
# Usage (repo root, as root, release binary in dist/): bash bench/device/sync.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps
. "$(dirname "$0")/cgroup-lib.sh"; cgroup_setup || exit 1
one() { # NAME SYNC KERNEL_FLAGS...: one worker, no limit
  local name=$1 sync=$2; shift 2
  "$B" run --mode timeslice --duration 2s --sync "$sync" "$@" --out "$O/one/$name-$sync.json" 2> "$O/one/$name-$sync.log"
}
four() { # NAME CPU_MAX SYNC: four time-sliced workers at a barrier, each in a cgroup of its own
  local name=$1 cpu=$2 sync=$3 pids=() port=$((7800 + RANDOM % 100))
  mkdir -p "$O/four/$name-$sync"
  for i in 0 1 2 3; do
    in_cgroup "$name-$sync-$i" "$cpu" max "$B" run --mode timeslice --kernel fma --blocks 16 --duration 3s \
      --sync "$sync" --workers 4 --worker-index $i --run-id "$name-$sync" --barrier 127.0.0.1:$port \
      --barrier-listen 127.0.0.1:$port --out "$O/four/$name-$sync/w$i.json" 2> "$O/four/$name-$sync/w$i.log" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  for i in 0 1 2 3; do cgroup_stat "$name-$sync-$i"; done
}
mkdir -p "$O/one" "$O/four"
for sync in spin yield blocking; do
  one fma "$sync"
  one fma16 "$sync" --kernel fma --blocks 16
  one tiny "$sync" --kernel tiny
done
for sync in spin yield blocking auto; do four limited "50000 100000" "$sync"; done
for sync in spin blocking; do four unlimited "max 100000" "$sync"; done
cgroup_cleanup
for f in "$O"/one/*.json; do "$B" report "$f" --out "${f%.json}-report" > /dev/null 2>&1; done
for d in "$O"/four/*; do "$B" report "$d" --out "$d-report" > /dev/null 2>&1; done
python3 - "$O" <<'PY'
import glob, json, sys
o = sys.argv[1]
def row(results, report_dir):
    rs = [json.load(open(p)) for p in results]
    rep = json.load(open(report_dir + "/report.json"))
    g = rep["groups"][0]
    cpu, thr = [], []
    for r in rs:
        h = r.get("host_conditions") or {}
        w = h.get("window_s") or 1
        cpu.append((h.get("worker_cpu_s") or 0) / w); thr.append((h.get("throttled_s") or 0) / w)
    flagged = any("throttled" in w.get("text", "") for w in rep.get("warnings", []))
    lat = g["latency"]
    return (f"{g['kernels_per_s']['value']:.0f} | {lat['p50_ns']/1e3:.1f} | {lat['p99_ns']/1e3:.1f} | "
            f"{min(cpu):.3f}-{max(cpu):.3f} | {min(thr):.2f}-{max(thr):.2f} | {'FLAGGED' if flagged else 'no'} | "
            f"{rs[0]['config'].get('sync')}")
head = "| kernels/s | p50 us | p99 us | worker CPUs | throttled share | flagged | sync recorded |"
print("## one worker, no CPU limit (time-slicing, 2 s)\n| kernel | sync " + head + "\n|---|---|---|---|---|---|---|---|---|")
for p in sorted(glob.glob(o + "/one/*.json")):
    name = p.split("/")[-1][:-5]
    print(f"| {name.rsplit('-',1)[0]} | {name.rsplit('-',1)[1]} | " + row([p], p[:-5] + "-report") + " |")
print("\n## four time-sliced workers, fma 16 blocks, 3 s, each in its own cgroup\n| limits.cpu | sync " + head + "\n|---|---|---|---|---|---|---|---|---|")
for d in sorted(d for d in glob.glob(o + "/four/*") if not d.endswith("-report")):
    name = d.split("/")[-1]
    limit = "500m" if name.startswith("limited") else "none"
    try:
        print(f"| {limit} | {name.split('-')[1]} | " + row(sorted(glob.glob(d + "/w*.json")), d + "-report") + " |")
    except Exception as e:
        print(f"| {limit} | {name} | failed: {e} |")
PY
