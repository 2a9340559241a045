#!/usr/bin/env python3
"""Checks what Kubernetes' own schemas cannot: the NVIDIA payloads inside the rendered manifests.

- DRA: every opaque config for driver gpu.nvidia.com is a resource.nvidia.com/v1beta1 GpuConfig whose sharing
  block has only the fields NVIDIA's DRA driver defines (strategy MPS with mpsConfig, or TimeSlicing with
  timeSlicingConfig).
- Device plugin: the ConfigMap's config is version v1 with sharing.mps or sharing.timeSlicing and replicas >= 2.
- The Job: completions == parallelism == SHAREBENCH_WORKERS, and the mode matches the sharing used; for a plan
  point, also --mode, --workers and that --scenario lies in a mounted ConfigMap.
- The barrier's NetworkPolicy, where present: it selects and admits exactly the Pods of the Job's run (the
  sharebench.dev/run label of the Pod template) on the barrier's port.
Usage: check_nvidia.py RENDERED.yaml
"""
import re
import sys
import yaml


def fail(message):
    sys.exit("error: %s: %s" % (sys.argv[1], message))


def only(obj, allowed, where):
    extra = set(obj) - set(allowed)
    if extra:
        fail("%s has unknown fields %s (allowed: %s)" % (where, sorted(extra), sorted(allowed)))


QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$")


def check_quantity(value, where):
    """A memory limit as Kubernetes writes quantities (16Gi, 512Mi), at least 1 MiB."""
    if not (isinstance(value, str) and QUANTITY.match(value)):
        fail("%s must be a quantity such as 16Gi or 512Mi, not %r" % (where, value))


def check_gpu_config(params):
    only(params, {"apiVersion", "kind", "sharing"}, "GpuConfig")
    if params.get("apiVersion") != "resource.nvidia.com/v1beta1" or params.get("kind") != "GpuConfig":
        fail("opaque parameters must be resource.nvidia.com/v1beta1 GpuConfig")
    sharing = params.get("sharing") or {}
    strategy = sharing.get("strategy")
    if strategy == "MPS":
        only(sharing, {"strategy", "mpsConfig"}, "GpuConfig.sharing")
        mps = sharing.get("mpsConfig") or {}
        only(mps, {"defaultActiveThreadPercentage", "defaultPinnedDeviceMemoryLimit", "defaultPerDevicePinnedMemoryLimit"}, "mpsConfig")
        pct = mps.get("defaultActiveThreadPercentage", 100)
        if not (isinstance(pct, int) and 1 <= pct <= 100):
            fail("defaultActiveThreadPercentage must be an integer in 1..100")
        if "defaultPinnedDeviceMemoryLimit" in mps:
            check_quantity(mps["defaultPinnedDeviceMemoryLimit"], "defaultPinnedDeviceMemoryLimit")
        per_device = mps.get("defaultPerDevicePinnedMemoryLimit", {})
        if not isinstance(per_device, dict):
            fail("defaultPerDevicePinnedMemoryLimit must map a device (index or UUID) to a quantity")
        for device, limit in per_device.items():
            if not (str(device).isdigit() or str(device).startswith(("GPU-", "MIG-"))):
                fail("defaultPerDevicePinnedMemoryLimit key %r is neither a device index nor a UUID" % device)
            check_quantity(limit, "defaultPerDevicePinnedMemoryLimit[%s]" % device)
    elif strategy == "TimeSlicing":
        only(sharing, {"strategy", "timeSlicingConfig"}, "GpuConfig.sharing")
        only(sharing.get("timeSlicingConfig") or {}, {"interval"}, "timeSlicingConfig")
        if (sharing.get("timeSlicingConfig") or {}).get("interval", "Default") not in ("Default", "Short", "Medium", "Long"):
            fail("timeSlicingConfig.interval must be Default, Short, Medium or Long")
    else:
        fail("GpuConfig.sharing.strategy must be MPS or TimeSlicing")
    return "mps" if strategy == "MPS" else "timeslice"


def check_device_plugin(text):
    config = yaml.safe_load(text)
    only(config, {"version", "flags", "sharing"}, "device plugin config")
    if config.get("version") != "v1":
        fail("device plugin config version must be v1")
    sharing = config.get("sharing") or {}
    only(sharing, {"mps", "timeSlicing"}, "device plugin sharing")
    if len(sharing) != 1:
        fail("device plugin sharing must name exactly one of mps, timeSlicing")
    (kind, body), = sharing.items()
    only(body, {"renameByDefault", "failRequestsGreaterThanOne", "resources"}, "sharing." + kind)
    for resource in body.get("resources", []):
        only(resource, {"name", "rename", "devices", "replicas"}, "sharing resource")
        if not (isinstance(resource.get("replicas"), int) and resource["replicas"] >= 2):
            fail("replicas must be an integer >= 2")
    return "mps" if kind == "mps" else "timeslice"


def check_network_policy(policy, pod_labels, container):
    run = pod_labels.get("sharebench.dev/run")
    selected = policy["spec"]["podSelector"].get("matchLabels", {})
    if selected.get("sharebench.dev/run") != run:
        fail("NetworkPolicy %s selects run %s, the Job's Pods are run %s" % (
            policy["metadata"]["name"], selected.get("sharebench.dev/run"), run))
    ports = {p["containerPort"] for p in container.get("ports", [])}
    for rule in policy["spec"].get("ingress", []):
        for peer in rule.get("from", []):
            if peer.get("podSelector", {}).get("matchLabels", {}).get("sharebench.dev/run") != run:
                fail("NetworkPolicy %s admits Pods of another run than %s" % (policy["metadata"]["name"], run))
        if not {p["port"] for p in rule.get("ports", [])} <= ports:
            fail("NetworkPolicy %s opens a port the worker does not serve" % policy["metadata"]["name"])


def main():
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    sharing_modes = []
    for doc in docs:
        if doc["kind"] == "ResourceClaim":
            for config in doc["spec"]["devices"].get("config", []):
                if config.get("opaque", {}).get("driver") == "gpu.nvidia.com":
                    sharing_modes.append(check_gpu_config(config["opaque"]["parameters"]))
        if doc["kind"] == "ConfigMap" and "sharebench" in doc.get("data", {}):
            sharing_modes.append(check_device_plugin(doc["data"]["sharebench"]))
    jobs = [d for d in docs if d["kind"] == "Job"]
    if len(jobs) != 1:
        fail("expected exactly one Job")
    spec = jobs[0]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    if spec.get("completionMode") != "Indexed":
        fail("the Job must be Indexed")
    if not (spec["completions"] == spec["parallelism"] == int(env["SHAREBENCH_WORKERS"])):
        fail("completions, parallelism and SHAREBENCH_WORKERS must be equal")
    if "CUDA_MPS_PIPE_DIRECTORY" in env:
        sharing_modes.append("mps")
    for mode in sharing_modes:
        if env["SHAREBENCH_MODE"] != mode:
            fail("SHAREBENCH_MODE is %s but the GPU is shared with %s" % (env["SHAREBENCH_MODE"], mode))
    # A plan point's Job spells the mode, the worker count and the scenario file out in its arguments.
    args = container.get("args", [])
    value = lambda flag: args[args.index(flag) + 1] if flag in args else None
    for mode in sharing_modes:
        if value("--mode") not in (None, "$(SHAREBENCH_MODE)", mode):
            fail("--mode is %s but the GPU is shared with %s" % (value("--mode"), mode))
    if value("--workers") not in (None, "$(SHAREBENCH_WORKERS)", str(spec["completions"])):
        fail("--workers %s differs from completions %s" % (value("--workers"), spec["completions"]))
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        check_network_policy(policy, spec["template"]["metadata"]["labels"], container)
    if value("--scenario"):
        config_maps = {v["name"] for v in spec["template"]["spec"].get("volumes", []) if "configMap" in v}
        mounts = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in config_maps]
        if not any(value("--scenario").startswith(path.rstrip("/") + "/") for path in mounts):
            fail("--scenario %s is not inside a mounted ConfigMap" % value("--scenario"))


if __name__ == "__main__":
    main()
