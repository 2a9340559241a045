#!/usr/bin/env bash
# Your own workload as a tenant, measured on the GPU: the PyTorch ResNet-50 tenant (bench/tenants/resnet.py).
#   compare : compare --exec at 1, 2, 4 and 8 Pods (batch 1, closed loop), time-sliced and under MPS
#   plan    : plan bench/scenarios/resnet-slo.toml (the tenant's own p99 as the SLO, Pods swept)
#   noisy   : plan bench/scenarios/noisy-resnet.toml (a sharebench latency Pod beside ResNet batch-8 Pods)
#   pods    : the noisy scenario as Kubernetes Jobs, each Pod started by crun from its OCI spec (bench/pods), the
#             tenant in "your image" (the node's root, read-only) at /app/bench/tenants
# Usage (repo root, as root, release binary in dist/): bash bench/device/tenants.sh STAGE OUTDIR
set -u
B=$(readlink -f "${SHAREBENCH_BIN:-dist/sharebench}")
stage=${1:?stage}; O=${2:?output directory}; mkdir -p "$O"
export PATH=/usr/local/nvidia/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,clocks.sm,power.draw,memory.used --format=csv
case $stage in
compare)
  "$B" compare --workers 1,2,4,8 --duration 10s --out "$O/compare-resnet" \
    --exec -- python3 bench/tenants/resnet.py --batch 1 ;;
plan)
  "$B" plan bench/scenarios/resnet-slo.toml --slo-p99 40 --max-pods 8 --duration 8s --out "$O/plan-resnet" ;;
noisy)
  "$B" plan bench/scenarios/noisy-resnet.toml --slo-p99 4 --max-pods 4 --duration 8s --out "$O/plan-noisy-resnet" ;;
pods)
  source bench/device/oci-node.sh && oci_node_setup
  unset SIM_IMAGE_ROOT  # "your image" holds Python and torch: the node's own root stands in for it
  kubectl_sim_setup "$B"
  P=/tmp/sb-dra-mps; rm -rf $P $P-log; mkdir -p $P $P-log
  CUDA_MPS_PIPE_DIRECTORY=$P CUDA_MPS_LOG_DIRECTORY=$P-log nvidia-cuda-mps-control -d; sleep 0.5
  export SIM_MPS_PIPE_DIRECTORY=$P
  # "Your image": the repo's bench/ at /app/bench and this machine's Python with torch (its site directory at
  # /app/python-site, on PYTHONPATH; its python3 first on PATH), as a Dockerfile FROM a PyTorch image would have.
  site=$(python3 -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')
  echo "python3: $(command -v python3) ($(python3 --version)), torch from $site"
  export SIM_IMAGE_FILES=$(readlink -f bench):/app/bench,$site:/app/python-site
  export SIM_IMAGE_ENV="PATH=$(dirname "$(command -v python3)"):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/nvidia/bin;PYTHONPATH=/app/python-site"
  "$B" plan bench/scenarios/noisy-resnet.toml --slo-p99 4 --max-pods 2 --duration 8s --kubectl /tmp/sb-k8s-bin/kubectl \
    --kubernetes timeslice=manifests/overlays/exec-resnet-timeslicing --kubernetes mps=manifests/overlays/exec-resnet-mps \
    --out "$O/plan-noisy-resnet-k8s"
  echo "plan exit=$?"
  python3 - "$O/plan-noisy-resnet-k8s" <<'PY'
import json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).rglob("*.json*")):
    if f.suffix not in (".json", ".jsonl"):
        continue
    for line in f.read_text().splitlines():
        if '"sharebench-result"' not in line:
            continue
        r = json.loads(line[line.index("{"):])
        t = r.get("tenant") or {}
        print("%-30s %-8s %-9s worker %d: pid %s, %s (%s), %s requests/kernels, command %s" % (
            f.parent.name, r["group"], r["mode"], r["config"]["worker_index"], r["host"]["pid"], r["sharing"]["verdict"],
            r["sharing"].get("proof"), sum(l["kernels"] for l in r["lanes"]), t.get("ending", "-")))
PY
  echo quit | CUDA_MPS_PIPE_DIRECTORY=$P nvidia-cuda-mps-control; sleep 1 ;;
esac
echo "### exit of stage $stage: done"; pgrep -a nvidia-cuda-mps || echo "no MPS left"
