# Staging a Pod's resources.limits as kubelet does, for bench/device scripts (source it; needs root and cgroup v2):
# `in_cgroup NAME CPU_MAX MEMORY_MAX CMD...` runs CMD in its own cgroup under /sys/fs/cgroup/sharebench-stage
# with cpu.max CPU_MAX ("50000 100000" is limits.cpu 500m, "max 100000" none) and memory.max MEMORY_MAX ("max",
# or bytes: limits.memory), as one Pod's container. `cgroup_stat NAME` prints its cpu.stat and memory.events;
# `cgroup_cleanup` removes every cgroup made here.
CG_ROOT=/sys/fs/cgroup
CG=$CG_ROOT/sharebench-stage
cgroup_setup() {
  [ -f $CG_ROOT/cgroup.controllers ] || { echo "no cgroup v2 at $CG_ROOT: cannot stage limits"; return 1; }
  echo "+cpu +memory" > $CG_ROOT/cgroup.subtree_control 2>/dev/null || echo "(could not enable cpu, memory below the root)"
  mkdir -p $CG; echo "+cpu +memory" > $CG/cgroup.subtree_control 2>/dev/null || true
}
in_cgroup() {
  local name=$1 cpu=$2 mem=$3; shift 3
  local g=$CG/$name; mkdir -p "$g"; echo "$cpu" > "$g/cpu.max"; echo "$mem" > "$g/memory.max"
  ( echo $BASHPID > "$g/cgroup.procs"; exec "$@" )
}
cgroup_stat() {
  echo "$1 cpu.stat: $(tr '\n' ' ' < $CG/$1/cpu.stat)"
  echo "$1 memory.events: $(tr '\n' ' ' < $CG/$1/memory.events) peak: $(cat $CG/$1/memory.peak 2>/dev/null)"
}
cgroup_cleanup() { for g in $CG/*/; do rmdir "$g" 2>/dev/null; done; rmdir $CG 2>/dev/null; true; }
