#!/usr/bin/env bash
# `sharebench plan --kubernetes` on the GPU machine, which has no cluster. The plan itself is the real one: it
# writes each point's kustomize overlay, applies it, follows the Job, reads the Pods' logs and deletes it. The
# kubectl it calls is bench/device/kubectl-sim.py: rendering by the real kubectl (offline), the Job's Pods each
# started by crun from its OCI spec (bench/pods: own PID/IPC/UTS/mount/network namespaces, the scenario ConfigMap
# mounted at its path, uid 65532, cgroup limits, seccomp), an MPS claim gets a private MPS daemon's pipe directory
# as NVIDIA's DRA driver injects it (bind-mounted at /tmp/nvidia-mps). Run as root; crun, the image's root and
# pyroute2 travel in dist/ (bench/device/oci-node.sh --prepare).
# Prepare here:  bash bench/device/plan-k8s.sh --prepare   (dist/kubectl.xz from the kubectl on PATH)
# Run there:     bash bench/device/plan-k8s.sh OUTDIR      (repo root, release binary in dist/)
set -u
if [ "${1:-}" = "--prepare" ]; then
  xz -T0 -9 -c "$(readlink -f "$(command -v kubectl)")" > dist/kubectl.xz
  exit 0
fi
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
source bench/device/oci-node.sh && oci_node_setup
kubectl_sim_setup "$B"
P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
export SIM_MPS_PIPE_DIRECTORY=$P
K=(--kubectl /tmp/sb-k8s-bin/kubectl)
DRA=(--kubernetes timeslice=manifests/overlays/dra-timeslicing --kubernetes mps=manifests/overlays/dra-mps)
summary() {  # group, mode, SMs the context saw, ATP asked for, verdict, kernels: one line per worker result
  python3 - "$1" <<'PY'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("results.jsonl")):
    for line in f.read_text().splitlines():
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        env = ((r["sharing"].get("check") or {}).get("observations") or {}).get("environment") or {}
        print("%-28s %-10s %-8s worker %d: pid %s uid %s, SMs %s of %s, ATP %s, %s (%s), %d kernels" % (
            f.parent.name, r["group"], r["mode"], r["config"]["worker_index"], env.get("pid"), env.get("uid"),
            r["gpu"]["context_sm_count"], r["gpu"]["sm_count"], r["config"].get("mps_active_thread_percentage"),
            r["sharing"]["verdict"], r["sharing"].get("proof"), sum(l["kernels"] for l in r["lanes"])))
PY
}
echo "### plan inference as Kubernetes Jobs (DRA overlays): SLO p99 5 ms, up to 8 Pods"
"$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 8 "${DRA[@]}" "${K[@]}" --out "$O/plan-inference-k8s"
echo "plan exit=$?"
echo "### noisy neighbour as Kubernetes Jobs, MPS, batch neighbours at 25% of the SMs"
"$B" plan bench/scenarios/noisy-neighbour.toml --slo-p99 4 --max-pods 4 --modes mps --atp 25 "${DRA[@]}" "${K[@]}" \
  --out "$O/plan-noisy-k8s"
echo "plan exit=$?"
summary "$O/plan-noisy-k8s"
echo "### a wrong overlay: mode mps mapped to the time-slicing claim"
"$B" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 1 --modes mps \
  --kubernetes mps=manifests/overlays/dra-timeslicing "${K[@]}" --out "$O/plan-wrong-overlay"
echo "plan exit=$?"
grep -h "refus\|NOT\|error" "$O"/plan-wrong-overlay/points/*/pods.log | cut -c1-240 | head -5
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
for _ in $(seq 50); do pgrep -x nvidia-cuda-mps >/dev/null || break; sleep 0.2; done
pgrep -x nvidia-cuda-mps >/dev/null && { echo "MPS still running: killing it"; pkill -x nvidia-cuda-mps; } || echo "MPS daemon stopped"
