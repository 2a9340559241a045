#!/usr/bin/env bash
# Issue 29 on the GPU machine: the rendered Jobs' Pods started by a real OCI runtime (crun) from the specs
# bench/pods translates them to, against the namespace-level harness they replace, each PART in one call:
#   jobs: a Pod's `check` under crun (its GPU, its MPS claim, the default seccomp profile); then the dra-timeslicing
#         and dra-mps Jobs, 3 repeats each, interleaved with the same Jobs through the namespace-level harness of
#         a5ade54 (bench/device/podrun.py, which made the namespaces itself and applied no cgroup limits, seccomp
#         or capabilities); every worker's proof of its mode; a report of each harness's Jobs; a Job whose Pods
#         have a CPU limit too small for a spinning worker (limits.cpu 200m): auto waits blocking, and a worker
#         told to spin is throttled, which the report must flag;
#   cpu:  the CPU-limit Jobs alone (200m: auto waits blocking; told to spin, it is throttled and flagged);
#   plan: `plan --kubernetes` of the inference scenario over the DRA overlays through kubectl-sim.py and crun.
# Prepare here: bash bench/device/crun-pods.sh --prepare   (after bash bench/device/oci-node.sh --prepare)
# Run there:    bash bench/device/crun-pods.sh OUTDIR jobs|cpu|plan   (repo root, as root, dist/ carried)
set -u
if [ "${1:-}" = "--prepare" ]; then
  mkdir -p dist/legacy
  for f in podrun.py podsim.py; do git show a5ade54:bench/device/$f > dist/legacy/$f; done
  python3 - <<'PY'
import json, subprocess, sys
sys.path.insert(0, "bench/pods")
from node import render_overlay
for overlay, mode in (("dra-timeslicing", "timeslice"), ("dra-mps", "mps")):
    for repeat in range(3):
        docs = render_overlay("manifests/overlays/" + overlay)
        c = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
        c["args"] += ["--repeat", str(repeat)]
        json.dump(docs, open("dist/pods-%s-r%d.json" % (mode, repeat), "w"))
    docs = render_overlay("manifests/overlays/" + overlay)
    job = next(d for d in docs if d["kind"] == "Job")
    job["spec"]["completions"] = job["spec"]["parallelism"] = 1
    c = job["spec"]["template"]["spec"]["containers"][0]
    c["args"] = ["check", "--expect", mode]
    json.dump(docs, open("dist/pods-%s-check.json" % mode, "w"))
docs = render_overlay("manifests/overlays/dra-timeslicing")
c = next(d for d in docs if d["kind"] == "Job")["spec"]["template"]["spec"]["containers"][0]
c["resources"]["limits"]["cpu"] = c["resources"]["requests"]["cpu"] = "200m"
c["args"][c["args"].index("--kernels") + 1] = "500"
json.dump(docs, open("dist/pods-cpu-limited.json", "w"))
c["args"] += ["--sync", "spin"]  # told to spin: the limit must throttle it, and the report must say so
json.dump(docs, open("dist/pods-cpu-limited-spin.json", "w"))
PY
  exit 0
fi
O=${1:?output directory}; PART=${2:?jobs, cpu or plan}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
source bench/device/oci-node.sh && oci_node_setup
P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
export SIM_MPS_PIPE_DIRECTORY=$P
proofs() { python3 bench/device/pod-proofs.py "$1"; }
cpu_limited() {  # limits.cpu 200m: the default (auto) waits blocking, a worker told to spin is throttled
  for v in cpu-limited cpu-limited-spin; do
    echo "### $v (limits.cpu 200m$([ $v = cpu-limited-spin ] && echo ', --sync spin'))"
    python3 bench/device/podsim.py "dist/pods-$v.json" "$B" "$O/logs-$v.txt"
    echo "podsim exit=$?"
    python3 - "$O/logs-$v.txt" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if '"format"' in line:
        r = json.loads(line[line.find("{"):])
        h = r["host_conditions"]
        print("  worker %d: sync %s, cgroup cpu quota %s, memory limit %s, throttled %.2f of %.2f s" % (
            r["config"]["worker_index"], r["config"]["sync"], h["cpu_quota"], h["memory_limit_bytes"],
            h["throttled_s"], h["window_s"]))
PY
    "$B" report - --out "$O/report-$v" < "$O/logs-$v.txt" > "$O/report-$v.txt" 2>&1
    echo "report exit=$?"; grep -i "throttl" "$O/report-$v/report.md" | head -3 | cut -c1-400
  done
}
case "$PART" in
jobs)
  for mode in timeslice mps; do
    echo "### one Pod's check under $SB_RUNTIME ($mode claim)"
    SIM_KEEP_SPECS=$O/spec-$mode python3 bench/device/podsim.py "dist/pods-$mode-check.json" "$B" "$O/check-$mode.txt"
    echo "podsim exit=$? (check exits 0 when the mode it expects is verified)"; cat "$O/check-$mode.txt"
  done
  for r in 0 1 2; do
    for mode in timeslice mps; do
      echo "### repeat $r, $mode: crun"
      python3 bench/device/podsim.py "dist/pods-$mode-r$r.json" "$B" "$O/logs-crun-$mode-r$r.txt"
      echo "podsim exit=$?"; proofs "$O/logs-crun-$mode-r$r.txt"
      echo "### repeat $r, $mode: namespace-level harness (a5ade54's podrun.py)"
      PYTHONPATH=$PYTHONPATH python3 dist/legacy/podsim.py "dist/pods-$mode-r$r.json" "$B" "$O/logs-ns-$mode-r$r.txt"
      echo "podsim exit=$?"; proofs "$O/logs-ns-$mode-r$r.txt"
    done
  done
  echo "### the MPS server's clients (server.log): the Pods' pids as the node sees them"
  grep -o "client {PID: [0-9]*" $P-log/server.log | sort -u | wc -l
  for h in crun ns; do
    cat "$O"/logs-$h-*.txt | "$B" report - --out "$O/report-$h" > "$O/report-$h.txt" 2>&1
    echo "report $h exit=$?"; grep -A4 "over the repeats\|^| mode" "$O/report-$h/report.md" | head -24
  done
  cpu_limited ;;
cpu)
  cpu_limited ;;
plan)
  kubectl_sim_setup "$B"
  echo "### plan inference as Kubernetes Jobs through crun (DRA overlays): SLO p99 5 ms, up to 4 Pods, 3 repeats"
  "$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 4 --repeat 3 \
    --kubernetes timeslice=manifests/overlays/dra-timeslicing --kubernetes mps=manifests/overlays/dra-mps \
    --kubectl /tmp/sb-k8s-bin/kubectl --out "$O/plan-inference-crun" > "$O/plan.txt" 2>&1
  echo "plan exit=$?"; tail -12 "$O/plan.txt"
  grep -h "verdict\|mps_joined\|timeslice_verified" -o "$O"/plan-inference-crun/points/*/*/pods.log 2>/dev/null | sort | uniq -c ;;
*) echo "PART must be jobs, cpu or plan" >&2 ;;
esac
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
for _ in $(seq 50); do pgrep -x nvidia-cuda-mps >/dev/null || break; sleep 0.2; done
pgrep -x nvidia-cuda-mps >/dev/null && { echo "MPS still running: killing it"; pkill -x nvidia-cuda-mps; } || echo "MPS daemon stopped"
