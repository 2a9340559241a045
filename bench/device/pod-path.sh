#!/usr/bin/env bash
# The Kubernetes pod code path on a real GPU, without a cluster: the rendered dra-timeslicing and dra-mps Jobs
# run by podsim.py, each Pod started by crun from its OCI spec (bench/pods: own PID namespace and /proc, IPC,
# UTS, mount and network namespaces on a bridge, only its declared volumes, uid 65532, a read-only root, cgroup
# limits, RuntimeDefault seccomp, no capabilities; bench/device/oci-node.sh sets the node up), the
# barrier reached Pod to Pod through the Service name, and the Pods' output piped into `sharebench report -`.
# For dra-mps a private MPS daemon on the node stands in for the one NVIDIA's DRA driver starts for the claim;
# its pipe directory reaches the Pods only through the claim's CDI edits (/tmp/nvidia-mps).
# Prepare here (needs kubectl): bash bench/device/pod-path.sh --render   (writes dist/pods-*.json)
# Run there (repo root, as root, release binary and bench/device/oci-node.sh's files in dist/): bash bench/device/pod-path.sh OUT
set -u
if [ "${1:-}" = "--render" ]; then
  for o in dra-timeslicing dra-mps; do
    kubectl kustomize "manifests/overlays/$o" | python3 -c \
      'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))' > "dist/pods-$o.json"
  done
  # A Job that cannot work on a cluster: mode mps on the time-slicing claim (no MPS pipe directory in the Pods).
  python3 - <<'PY'
import json
docs = json.load(open("dist/pods-dra-timeslicing.json"))
job = next(d for d in docs if d["kind"] == "Job")
job["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "mps"
json.dump(docs, open("dist/pods-mps-on-timeslicing.json", "w"))
PY
  exit 0
fi
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
source bench/device/oci-node.sh && oci_node_setup
proofs() { python3 bench/device/pod-proofs.py "$1"; }  # one line per worker: its pid, namespace, uid, proof
echo "### dra-timeslicing"
python3 bench/device/podsim.py dist/pods-dra-timeslicing.json "$B" "$O/logs-timeslicing.txt"
echo "podsim exit=$?"; proofs "$O/logs-timeslicing.txt"
P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
echo "### dra-mps"
SIM_MPS_PIPE_DIRECTORY=$P python3 bench/device/podsim.py dist/pods-dra-mps.json "$B" "$O/logs-mps.txt"
echo "podsim exit=$?"; proofs "$O/logs-mps.txt"
echo "### the MPS server's view (server.log): the clients' pids as the node sees them"
grep -o "client {PID: [0-9]*" $P-log/server.log | sort -u
echo "### cat logs | sharebench report -"
cat "$O/logs-timeslicing.txt" "$O/logs-mps.txt" | "$B" report - --out "$O/report"
echo "report exit=$?"
echo "### a Job that cannot work on a cluster: mode mps on the time-slicing claim"
SIM_MPS_PIPE_DIRECTORY=$P python3 bench/device/podsim.py dist/pods-mps-on-timeslicing.json "$B" "$O/logs-mps-on-timeslicing.txt" --barrier-timeout 20s
echo "podsim exit=$?"
grep -h "refusing\|observed\|fix" "$O/logs-mps-on-timeslicing.txt" | sort | uniq -c | cut -c1-240
echo "### faults in the pod path: pod 2 killed mid-run (dra-timeslicing), then pod 3 never started (dra-mps)"
python3 bench/device/podsim.py dist/pods-dra-timeslicing.json "$B" "$O/logs-fault-pod-killed.txt" --kill 2 3
echo "podsim exit=$?"
"$B" report - --keep-going < "$O/logs-fault-pod-killed.txt" | grep -E "^(run|workers|[0-9]|warning|failed)" | cut -c1-200
SIM_MPS_PIPE_DIRECTORY=$P python3 bench/device/podsim.py dist/pods-dra-mps.json "$B" "$O/logs-fault-pod-absent.txt" --absent 3 --barrier-timeout 8s
echo "podsim exit=$?"
grep -h "barrier" "$O/logs-fault-pod-absent.txt" | sort | uniq -c | cut -c1-220
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
