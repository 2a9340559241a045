#!/usr/bin/env bash
# A Pod's CPU limit staged as kubelet stages it: four `sharebench run` workers (time-slicing, 16-block fma, 3 s),
# each in a cgroup v2 of its own with cpu.max 50000 100000 (limits.cpu: 500m), meeting at their barrier as a Job's
# Pods do; then the same four without a limit. `sharebench report` must flag the first run (throttled) and not
# the second. Usage (repo root, as root, release binary in dist/): bash bench/device/throttle.sh OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
C=/sys/fs/cgroup
[ -f $C/cgroup.controllers ] || { echo "no cgroup v2 at $C: cannot stage limits"; exit 1; }
echo "cgroup v2 controllers: $(cat $C/cgroup.controllers); subtree: $(cat $C/cgroup.subtree_control)"
echo +cpu > $C/cgroup.subtree_control 2>/dev/null || echo "(could not enable cpu in the root's subtree)"
P=$C/sharebench-throttle; mkdir -p $P; echo +cpu > $P/cgroup.subtree_control 2>/dev/null
work() { # NAME LIMIT: four workers, each in $P/NAME-i with cpu.max LIMIT
  local name=$1 limit=$2 pids=()
  for i in 0 1 2 3; do
    local g=$P/$name-$i; mkdir -p $g; echo "$limit" > $g/cpu.max
    ( echo $BASHPID > $g/cgroup.procs
      exec "$B" run --mode timeslice --kernel fma --blocks 16 --duration 3s --workers 4 --worker-index $i \
        --run-id "$name" --barrier 127.0.0.1:7791 --barrier-listen 127.0.0.1:7791 --out "$O/$name/w$i.json" \
        2> "$O/$name/w$i.log" ) &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait $p; done
  for i in 0 1 2 3; do echo "$name-$i cpu.stat: $(tr '\n' ' ' < $P/$name-$i/cpu.stat)"; done
}
mkdir -p "$O/limited" "$O/unlimited"
CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps work limited "50000 100000"
CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps work unlimited "max 100000"
for name in limited unlimited; do
  echo "### report $name"
  "$B" report "$O/$name" | sed -n '1,/^comparisons\|^warning\|^advisory/p;/^warning/p' | head -20
  python3 -c "import json,glob; [print(f, json.load(open(f)).get('host_conditions')) for f in sorted(glob.glob('$O/$name/w*.json'))]"
done
for name in limited unlimited; do for i in 0 1 2 3; do rmdir $P/$name-$i 2>/dev/null; done; done; rmdir $P 2>/dev/null
echo "### done"
