#!/usr/bin/env bash
# Issue 29 on the GPU machine: the rendered Jobs' Pods started by a real OCI runtime (crun) from the specs
# bench/pods translates them to, against the namespace-level harness they replace, each PART in one call:
#   jobs: a Pod's `check` under crun (its GPU, its MPS claim, the default seccomp profile); then the dra-timeslicing
#         and dra-mps Jobs, 3 repeats each, interleaved with the same Jobs through the namespace-level harness of
#         a5ade54 (bench/device/podrun.py, which made the namespaces itself and applied no cgroup limits, seccomp
#         or capabilities); every worker's proof of its mode; a report of each harness's Jobs; a Job whose Pods
#         have a CPU limit too small for a spinning worker (limits.cpu 200m), which the report must flag;
#   plan: `plan --kubernetes` of the inference scenario over the DRA overlays through kubectl-sim.py and crun.
# Prepare here: bash bench/device/crun-pods.sh --prepare   (after bash bench/device/oci-node.sh --prepare)
# Run there:    bash bench/device/crun-pods.sh OUTDIR jobs|plan   (repo root, as root, dist/ carried)
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
PY
  exit 0
fi
O=${1:?output directory}; PART=${2:?jobs or plan}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
source bench/device/oci-node.sh && oci_node_setup
P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
export SIM_MPS_PIPE_DIRECTORY=$P
proofs() { python3 bench/device/pod-proofs.py "$1"; }
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
  echo "### a CPU limit too small for a spinning worker (limits.cpu 200m)"
  python3 bench/device/podsim.py dist/pods-cpu-limited.json "$B" "$O/logs-cpu-limited.txt"
  echo "podsim exit=$?"
  "$B" report - --out "$O/report-cpu-limited" < "$O/logs-cpu-limited.txt" > "$O/report-cpu-limited.txt" 2>&1
  echo "report exit=$?"; grep -i "throttl\|cpu limit" "$O/report-cpu-limited/report.md" | head -5 | cut -c1-400 ;;
plan)
  python3 -c 'import lzma, shutil; shutil.copyfileobj(lzma.open("dist/kubectl.xz"), open("/tmp/kubectl-real", "wb"))'
  chmod +x /tmp/kubectl-real; mkdir -p /tmp/sb-k8s-bin
  printf '#!/bin/sh\nexec python3 %s "$@"\n' "$(readlink -f bench/device/kubectl-sim.py)" > /tmp/sb-k8s-bin/kubectl
  chmod +x /tmp/sb-k8s-bin/kubectl
  export SIM_KUBECTL=/tmp/kubectl-real SIM_SHAREBENCH=$B SIM_STATE=/tmp/kubectl-sim
  echo "### plan inference as Kubernetes Jobs through crun (DRA overlays): SLO p99 5 ms, up to 4 Pods, 3 repeats"
  "$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 4 --repeat 3 \
    --kubernetes timeslice=manifests/overlays/dra-timeslicing --kubernetes mps=manifests/overlays/dra-mps \
    --kubectl /tmp/sb-k8s-bin/kubectl --out "$O/plan-inference-crun" > "$O/plan.txt" 2>&1
  echo "plan exit=$?"; tail -12 "$O/plan.txt"
  grep -h "verdict\|mps_joined\|timeslice_verified" -o "$O"/plan-inference-crun/points/*/*/pods.log 2>/dev/null | sort | uniq -c ;;
*) echo "PART must be jobs or plan" >&2 ;;
esac
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
for _ in $(seq 50); do pgrep -x nvidia-cuda-mps >/dev/null || break; sleep 0.2; done
pgrep -x nvidia-cuda-mps >/dev/null && { echo "MPS still running: killing it"; pkill -x nvidia-cuda-mps; } || echo "MPS daemon stopped"
