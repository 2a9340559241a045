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
# The validator must reject what the API server would: an unknown field in the Job.
sed 's/^  completionMode: Indexed/  completionMode: Indexed\n  bogusField: 1/' "$out/dra-mps.yaml" > "$out/bad.yaml"
if PYTHONPATH=.kv python3 -m kubernetes_validate -k "$K8S_VERSION" --strict --quiet "$out/bad.yaml" >/dev/null 2>&1; then
  echo "error: the validator accepted an unknown field; strict validation is not working" >&2
  exit 1
fi
echo "ok: an unknown field is rejected"
