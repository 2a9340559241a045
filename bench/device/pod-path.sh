#!/usr/bin/env bash
# The Kubernetes pod code path on a real GPU, without a cluster: the rendered dra-timeslicing and dra-mps Jobs
# are started as local processes by podsim.py (same args and env as the Pods), the barrier is reached through
# the Service's name mapped to loopback, and the concatenated output is piped into `sharebench report -`.
# For dra-mps a private MPS daemon stands in for the one NVIDIA's DRA driver starts, with its pipe directory
# in CUDA_MPS_PIPE_DIRECTORY as the driver injects it.
# Prepare here (needs kubectl): bash bench/device/pod-path.sh --render   (writes dist/pods-*.json)
# Run there (repo root, release binary in dist/): bash bench/device/pod-path.sh OUTDIR
set -u
if [ "${1:-}" = "--render" ]; then
  for o in dra-timeslicing dra-mps; do
    kubectl kustomize "manifests/overlays/$o" | PYTHONPATH=.kv python3 -c \
      'import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))' > "dist/pods-$o.json"
  done
  exit 0
fi
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
O=${1:?output directory}; mkdir -p "$O"
grep -q "sharebench-0.sharebench" /etc/hosts || echo "127.0.0.1 sharebench-0.sharebench" >> /etc/hosts
echo "### dra-timeslicing"
CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps python3 bench/device/podsim.py dist/pods-dra-timeslicing.json "$B" "$O/logs-timeslicing.txt"
echo "podsim exit=$?"
P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
echo "### dra-mps"
CUDA_MPS_PIPE_DIRECTORY=$P python3 bench/device/podsim.py dist/pods-dra-mps.json "$B" "$O/logs-mps.txt"
echo "podsim exit=$?"
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
echo "### cat logs | sharebench report -"
cat "$O/logs-timeslicing.txt" "$O/logs-mps.txt" | "$B" report - --out "$O/report"
echo "report exit=$?"
echo "### faults in the pod path: pod 2 killed mid-run (dra-timeslicing), then pod 3 never started (dra-mps)"
CUDA_MPS_PIPE_DIRECTORY=/tmp/sb-no-mps python3 bench/device/podsim.py dist/pods-dra-timeslicing.json "$B" "$O/logs-killed.txt" --kill 2 3
echo "podsim exit=$?"
"$B" report - --keep-going < "$O/logs-killed.txt" | grep -E "^(run|workers|[0-9]|warning|failed)" | cut -c1-200
CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
CUDA_MPS_PIPE_DIRECTORY=$P python3 bench/device/podsim.py dist/pods-dra-mps.json "$B" "$O/logs-absent.txt" --absent 3 --barrier-timeout 8s
echo "podsim exit=$?"
grep -h "barrier" "$O/logs-absent.txt" | sort | uniq -c | cut -c1-220
echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control
