#!/usr/bin/env bash
# Renders every overlay with kustomize and validates every object against the Kubernetes 1.34 OpenAPI schemas,
# rejecting unknown fields (kubernetes-validate --strict), then checks the NVIDIA-specific payloads that the API
# server cannot: the DRA driver's GpuConfig and the device plugin's sharing config.
# Usage: bash manifests/validate.sh   (installs kubernetes-validate into .kv/ on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION=1.34.0
if ! PYTHONPATH=.kv python3 -c "import kubernetes_validate" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check --target .kv kubernetes-validate==1.37.0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in manifests/overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  PYTHONPATH=.kv python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet "$out/$name.yaml"
  PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/$name.yaml"
  echo "ok: $name ($(grep -c '^kind:' "$out/$name.yaml") objects, Kubernetes $K8S_VERSION, strict)"
done
# Every point of a plan (sharebench plan --kubernetes --dry-run): the Job patched to the point, the scenario in
# a generated ConfigMap. A multi-group scenario with the MPS knob, over both DRA and both device-plugin overlays,
# two repeats a point: one Job each (r1/, r2/), each worker told its repeat.
bin=${SHAREBENCH_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --locked --bin sharebench
  bin=target/debug/sharebench
fi
for pair in "dra-timeslicing dra-mps" "device-plugin-timeslicing device-plugin-mps"; do
  read -r ts mps <<< "$pair"
  "$bin" plan bench/scenarios/noisy-neighbour.toml --slo-p99 4 --max-pods 4 --atp 25 --repeat 2 --dry-run \
    --kubernetes "timeslice=manifests/overlays/$ts" --kubernetes "mps=manifests/overlays/$mps" --out "$out/plan-$ts" >/dev/null
  n=0
  for point in "$out/plan-$ts"/points/*/r*/; do
    kubectl kustomize "$point" > "$out/point.yaml"
    PYTHONPATH=.kv python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet "$out/point.yaml"
    PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/point.yaml"
    repeat=$(( $(basename "$point" | tr -d r) - 1 ))
    grep -A1 -- '- --repeat' "$out/point.yaml" | grep -q -- "- \"\?$repeat\"\?$" \
      || { echo "error: $point does not tell its workers --repeat $repeat" >&2; exit 1; }
    n=$((n + 1))
  done
  echo "ok: $n plan points (Jobs, one per repeat) over $ts and $mps (Kubernetes $K8S_VERSION, strict)"
done
# A scenario with a command group (your own image, bench/tenants' ResNet-50): its points render and validate too.
"$bin" plan bench/scenarios/noisy-resnet.toml --slo-p99 4 --max-pods 4 --repeat 1 --dry-run \
  --kubernetes timeslice=manifests/overlays/exec-resnet-timeslicing --kubernetes mps=manifests/overlays/exec-resnet-mps \
  --out "$out/plan-resnet" >/dev/null
n=0
for point in "$out/plan-resnet"/points/*/; do
  kubectl kustomize "$point" > "$out/point.yaml"
  PYTHONPATH=.kv python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet "$out/point.yaml"
  PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/point.yaml"
  grep -q -- "--ready-timeout" "$out/point.yaml" || { echo "error: a command point lacks --ready-timeout" >&2; exit 1; }
  n=$((n + 1))
done
echo "ok: $n plan points of a scenario with a command group (your image, exec-resnet overlays)"
# check_nvidia.py must reject a point whose overlay shares the GPU another way than the mode it plans.
"$bin" plan bench/scenarios/inference.toml --slo-p99 5 --max-pods 1 --modes mps --repeat 1 --dry-run \
  --kubernetes mps=manifests/overlays/dra-timeslicing --out "$out/plan-wrong" >/dev/null
kubectl kustomize "$out/plan-wrong/points/mps-1" > "$out/wrong.yaml"
if PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/wrong.yaml" 2>/dev/null; then
  echo "error: check_nvidia.py accepted an MPS point on a time-slicing claim" >&2
  exit 1
fi
echo "ok: an MPS point on a time-slicing claim is rejected"
# check_nvidia.py must reject a barrier NetworkPolicy that admits another run than the Job's.
sed 's/^\(          sharebench.dev\/run: \)experiment-1$/\1another-run/' "$out/dra-mps.yaml" > "$out/policy.yaml"
if PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/policy.yaml" 2>/dev/null; then
  echo "error: check_nvidia.py accepted a NetworkPolicy of another run" >&2
  exit 1
fi
echo "ok: a NetworkPolicy that admits another run is rejected"
# ... and an MPS memory limit that is not a quantity (the DRA driver would refuse the claim at allocation).
sed 's/defaultPinnedDeviceMemoryLimit: 16Gi/defaultPinnedDeviceMemoryLimit: 16 gigabytes/' "$out/dra-mps-limited.yaml" > "$out/limit.yaml"
if PYTHONPATH=.kv python3 manifests/check_nvidia.py "$out/limit.yaml" 2>/dev/null; then
  echo "error: check_nvidia.py accepted a pinned memory limit that is not a quantity" >&2
  exit 1
fi
echo "ok: a memory limit that is not a quantity is rejected"
# The validator must reject what the API server would: an unknown field in the Job.
sed 's/^  completionMode: Indexed/  completionMode: Indexed\n  bogusField: 1/' "$out/dra-mps.yaml" > "$out/bad.yaml"
if PYTHONPATH=.kv python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet "$out/bad.yaml" >/dev/null 2>&1; then
  echo "error: the validator accepted an unknown field; strict validation is not working" >&2
  exit 1
fi
echo "ok: an unknown field is rejected"
# wait-job.sh ends on the Job's outcome either way, against a stand-in kubectl that reports the conditions.
mkdir -p "$out/bin"
cat > "$out/bin/kubectl" <<'KUBECTL'
#!/usr/bin/env bash
case "$*" in
  *"get job/"*) printf '%s' "$FAKE_CONDITIONS" ;;
  *"get pods"*) echo "sharebench-0-abcde   0/1   Error" ;;
  *logs*) echo "[pod/sharebench-0] sharebench: error: refusing to measure: this worker must be an MPS client" ;;
esac
KUBECTL
chmod +x "$out/bin/kubectl"
for case in "Complete:0" "SuccessCriteriaMet Complete:0" "FailureTarget Failed:1" ":2"; do
  conditions=${case%:*} want=${case##*:}
  got=0
  FAKE_CONDITIONS="$conditions" KUBECTL="$out/bin/kubectl" bash manifests/wait-job.sh sharebench 1 > "$out/wait.txt" 2>&1 || got=$?
  if [ "$got" != "$want" ]; then echo "error: wait-job.sh with conditions '$conditions' exited $got, not $want" >&2; cat "$out/wait.txt" >&2; exit 1; fi
  if [ "$want" = 1 ] && ! grep -q "refusing to measure" "$out/wait.txt"; then
    echo "error: wait-job.sh did not show the failed Pods' logs" >&2; exit 1
  fi
done
echo "ok: wait-job.sh ends at once on a failed Job, with its Pods' last log lines"
