"""One container of a rendered Pod as an OCI runtime spec (a bundle's config.json), as kubelet and CRI-O would
hand it to crun: its namespaces, uid/gid and supplementary groups, the capabilities, no_new_privs and seccomp
profile of its securityContext, masked and read-only /proc paths, the runtime's default mounts, the declared
volumes and the CDI edits of its GPU (device nodes, driver files, environment), its environment as the kubelet
resolves it on top of the image's, and its requests and limits as cgroup resources and an OOM score.

Pure: every host path comes in through `node` (what the node side, node.py, materialised), so the same Pod
always gives the same spec, and bench/pods/test_translate.py holds golden specs of the rendered overlays.

Not translated (no Pod here asks for them; a Pod that does is refused, never half-started): privileged
containers, Localhost seccomp profiles, projected, secret and service-account-token volumes, and not applied:
AppArmor and SELinux labels, user namespaces (hostUsers: false), probes, init containers.
"""
import json
import re

# CRI-O's default_capabilities (crio.conf, since 1.18): what a container gets before its securityContext.
DEFAULT_CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP",
                        "NET_BIND_SERVICE", "KILL"]
# The paths CRI-O and containerd mask and make read-only for procMount: Default.
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
                "/sys/devices/virtual/powercap", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
# The device cgroup: deny all, then what every container may use (containerd's and CRI-O's defaults).
DEFAULT_DEVICE_RULES = [{"allow": False, "access": "rwm"}] + [
    dict({"allow": True, "type": t, "access": access}, **({"major": major} if major is not None else {}),
         **({"minor": minor} if minor is not None else {}))  # an absent number is the wildcard
    for t, major, minor, access in [("c", None, None, "m"), ("b", None, None, "m"), ("c", 1, 3, "rwm"),
                                    ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
                                    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"),
                                    ("c", 136, None, "rwm"), ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm")]]
DNS_AND_HOST_FILES = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"]
TERMINATION_LOG = "/dev/termination-log"


class PodFailed(Exception):
    """The Pod cannot start, as the kubelet would leave it waiting (reason, message)."""

    def __init__(self, reason, message):
        super().__init__("%s: %s" % (reason, message))
        self.reason, self.message = reason, message


def expand(text, env):
    """Kubelet's $(VAR) expansion: known variables are replaced, $$ escapes, unknown references stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def quantity(text):
    """A Kubernetes quantity ("1Gi", "500m", "2") as a number (bytes, or cores)."""
    units = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "m": 1e-3}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not m or (m.group(2) and m.group(2) not in units):
        raise PodFailed("CreateContainerConfigError", "quantity %r is not one Kubernetes reads" % text)
    return float(m.group(1)) * units.get(m.group(2), 1)


def gpu_access(pod_spec, container):
    """How the Pod gets the GPU: ('dra', claim names), ('device-plugin', None), ('runtime', None) or None."""
    claims = [c["name"] for c in container.get("resources", {}).get("claims", [])]
    if claims:
        return "dra", claims
    if "nvidia.com/gpu" in container.get("resources", {}).get("limits", {}):
        return "device-plugin", None
    visible = any(e["name"] == "NVIDIA_VISIBLE_DEVICES" for e in container.get("env", []))
    if visible and pod_spec.get("runtimeClassName") == "nvidia":
        return "runtime", None
    return None


def user_and_groups(pod_spec, container, image_user):
    """(uid, gid, additional gids) from the securityContext over the image's USER ("65532:65532")."""
    sc = dict(pod_spec.get("securityContext", {}))
    sc.update({k: v for k, v in container.get("securityContext", {}).items()
               if k in ("runAsUser", "runAsGroup", "runAsNonRoot")})
    image_uid, _, image_gid = image_user.partition(":")
    if not image_uid.isdigit() or (image_gid and not image_gid.isdigit()):
        raise PodFailed("CreateContainerConfigError", "image user %r is not numeric" % image_user)
    uid = int(sc.get("runAsUser", image_uid))
    # Without runAsGroup: the image's group for the image's own user; for a runAsUser the image's /etc/passwd
    # does not name (it names no 65532), group 0, as CRI-O resolves it.
    if "runAsGroup" in sc:
        gid = int(sc["runAsGroup"])
    else:
        gid = int(image_gid or 0) if "runAsUser" not in sc else 0
    if sc.get("runAsNonRoot") and uid == 0:
        raise PodFailed("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")
    groups = list(pod_spec.get("securityContext", {}).get("supplementalGroups", []))
    fs_group = pod_spec.get("securityContext", {}).get("fsGroup")
    if fs_group is not None and fs_group not in groups:
        groups.append(fs_group)
    return uid, gid, groups


def capabilities(container, uid):
    """The process's capability sets: CRI-O's defaults, then the securityContext's drop and add. A non-root
    process keeps them only in its bounding set (the kernel clears the others at exec for uid != 0)."""
    sc = container.get("securityContext", {})
    if sc.get("privileged"):
        raise PodFailed("Unsupported", "privileged containers are not translated")
    drop = set(sc.get("capabilities", {}).get("drop", []))
    caps = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    caps += [c for c in sc.get("capabilities", {}).get("add", []) if c not in caps]
    names = ["CAP_" + c for c in caps]
    held = names if uid == 0 else []
    return {"bounding": names, "effective": held, "permitted": held, "inheritable": [], "ambient": []}


def seccomp_type(pod_spec, container):
    profile = container.get("securityContext", {}).get("seccompProfile") or \
        pod_spec.get("securityContext", {}).get("seccompProfile") or {"type": "Unconfined"}
    if profile["type"] not in ("RuntimeDefault", "Unconfined"):
        raise PodFailed("Unsupported", "seccompProfile %s is not translated" % profile["type"])
    return profile["type"]


def qos_class(container):
    """The Pod's QoS class (one container): Guaranteed, Burstable or BestEffort."""
    res = container.get("resources", {})
    requests, limits = res.get("requests", {}), res.get("limits", {})
    if not requests and not limits:
        return "BestEffort"
    full = all(r in limits for r in ("cpu", "memory"))
    same = all(quantity(requests.get(r, limits.get(r))) == quantity(limits[r]) for r in ("cpu", "memory")
               if r in limits)
    return "Guaranteed" if full and same else "Burstable"


def oom_score_adj(container, machine_memory):
    """The kubelet's OOM score for the container (pkg/kubelet/qos/policy.go)."""
    qos = qos_class(container)
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    request = container.get("resources", {}).get("requests", {}).get("memory")
    score = 1000 - (1000 * int(quantity(request))) // machine_memory if request else 1000
    return min(max(score, 3), 999)


def cgroup_resources(container, devices):
    """`linux.resources`: CPU weight from the request, the CFS quota from the CPU limit, the memory limit, and
    the device cgroup (the defaults and the GPU's nodes)."""
    res = container.get("resources", {})
    requests, limits = res.get("requests", {}), res.get("limits", {})
    cpu_request = requests.get("cpu", limits.get("cpu"))
    out = {"devices": DEFAULT_DEVICE_RULES + [
        {"allow": True, "type": "c", "major": d["major"], "minor": d["minor"], "access": "rw"} for d in devices]}
    out["cpu"] = {"shares": max(2, int(quantity(cpu_request) * 1024)) if cpu_request else 2}
    if "cpu" in limits:
        out["cpu"].update({"quota": max(1000, int(quantity(limits["cpu"]) * 100000)), "period": 100000})
    if "memory" in limits:
        out["memory"] = {"limit": int(quantity(limits["memory"]))}
    return out


def default_mounts(node, host_ipc):
    """The mounts every container gets from the runtime and the kubelet, before its volumes."""
    shm = {"destination": "/dev/shm", "type": "bind", "source": node["shm"], "options": ["rbind", "rw"]} \
        if not host_ipc else {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                              "options": ["rbind", "rw"]}
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        shm,
    ] + [{"destination": path, "type": "bind", "source": node["pod_files"][path], "options": ["rbind", "rw"]}
         for path in DNS_AND_HOST_FILES + [TERMINATION_LOG]]


def volume_mounts(pod_spec, container, node):
    """The container's volumeMounts: emptyDir, configMap and hostPath volumes at their host paths (node
    ["volumes"]: name -> directory the node side made), a memory emptyDir as tmpfs of its size limit."""
    by_name = {v["name"]: v for v in pod_spec.get("volumes", [])}
    mounts = []
    for m in container.get("volumeMounts", []):
        volume = by_name.get(m["name"])
        if volume is None:
            raise PodFailed("CreateContainerConfigError", "volumeMount %s names no volume" % m["name"])
        mode = "ro" if m.get("readOnly") else "rw"
        if "emptyDir" in volume and volume["emptyDir"].get("medium") == "Memory":
            size = int(quantity(volume["emptyDir"].get("sizeLimit", "64Mi")))
            mounts.append({"destination": m["mountPath"], "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777", "size=%d" % size]})
            continue
        if "configMap" in volume:
            mode = "ro"
        elif not any(kind in volume for kind in ("emptyDir", "hostPath")):
            raise PodFailed("Unsupported", "volume %s: only emptyDir, configMap and hostPath are translated"
                            % m["name"])
        mounts.append({"destination": m["mountPath"], "type": "bind", "source": node["volumes"][m["name"]],
                       "options": ["rbind", "rprivate", mode]})
    return mounts


def process_env(container_env, image_env, hostname, cdi_env):
    """The image's ENV, HOSTNAME, then the container's env and the CDI edits, a later value replacing an
    earlier one of the same name (as CRI-O merges them)."""
    merged = {}
    for pair in image_env:
        key, _, value = pair.partition("=")
        merged[key] = value
    merged["HOSTNAME"] = hostname
    merged.update(container_env)
    merged.update(cdi_env)
    return ["%s=%s" % kv for kv in merged.items()]


def command_line(container, image, env):
    """The argv: command (else the image's ENTRYPOINT) and args (else, without a command, the image's CMD)."""
    command = container.get("command")
    args = container.get("args")
    if command is None:
        command, args = image["entrypoint"], image["cmd"] if args is None else args
    argv = [expand(a, env) for a in list(command) + list(args or [])]
    if not argv:
        raise PodFailed("CreateContainerConfigError", "no command: the image has no ENTRYPOINT or CMD")
    return argv


def replacing(*layers):
    """The mounts of each layer, a later layer's mount replacing an earlier one at the same destination (a
    volume at /dev/shm replaces the runtime's; a CDI edit replaces what is there, as CDI's Apply does)."""
    out = []
    for layer in layers:
        targets = {m["destination"] for m in layer}
        out = [m for m in out if m["destination"] not in targets] + layer
    return out


def mount_depth(mount):
    return len([p for p in mount["destination"].split("/") if p])


def oci_config(pod_spec, container, node):
    """The OCI runtime spec of `container` of the Pod, given what the node resolved (see module doc):
    node = {image: {user, env, entrypoint, cmd, workdir}, hostname, env (the container's resolved env), pod_name,
    namespace, pod_files: {/etc/hosts: path, ...}, shm, volumes: {name: path}, cdi: {mounts, env, devices},
    netns, cgroups_path, machine_memory, arch, rlimit_nofile: [soft, hard], seccomp: the OCI seccomp or None}."""
    if pod_spec.get("automountServiceAccountToken") is not False:
        raise PodFailed("Unsupported", "a service account token volume is not emulated (no API server here): "
                        "set automountServiceAccountToken: false, as manifests/base does")
    uid, gid, groups = user_and_groups(pod_spec, container, node["image"]["user"])
    caps = capabilities(container, uid)
    sc = container.get("securityContext", {})
    cdi = node["cdi"]
    host_network, host_pid, host_ipc = (bool(pod_spec.get(k)) for k in ("hostNetwork", "hostPID", "hostIPC"))
    mounts = replacing(default_mounts(node, host_ipc), volume_mounts(pod_spec, container, node), [
        {"destination": target, "type": "bind", "source": source, "options": ["rbind", "rprivate", mode]}
        for source, target, mode in cdi["mounts"]])
    mounts.sort(key=mount_depth)  # stable: a mount inside a volume lands on top of it, as CRI-O orders them
    namespaces = [{"type": "mount"}, {"type": "cgroup"}]
    if not host_pid:
        namespaces.append({"type": "pid"})
    if not host_ipc:
        namespaces.append({"type": "ipc"})
    if not host_network:
        namespaces += [{"type": "uts"}, {"type": "network", "path": node["netns"]}]
    env = process_env(node["env"], node["image"]["env"], node["hostname"], cdi["env"])
    argv = command_line(container, node["image"], dict(e.split("=", 1) for e in env))
    linux = {
        "namespaces": namespaces,
        "devices": [{"path": d["path"], "type": "c", "major": d["major"], "minor": d["minor"], "fileMode": 0o666,
                     "uid": 0, "gid": 0} for d in cdi["devices"]],
        "resources": cgroup_resources(container, cdi["devices"]),
        "cgroupsPath": node["cgroups_path"],
        "maskedPaths": [] if sc.get("procMount") == "Unmasked" else MASKED_PATHS,
        "readonlyPaths": [] if sc.get("procMount") == "Unmasked" else READONLY_PATHS,
        "sysctl": {s["name"]: s["value"] for s in pod_spec.get("securityContext", {}).get("sysctls", [])},
    }
    if seccomp_type(pod_spec, container) == "RuntimeDefault":
        linux["seccomp"] = node["seccomp"]
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": groups} if groups else {"uid": uid, "gid": gid},
            "args": argv,
            "env": env,
            "cwd": container.get("workingDir") or node["image"].get("workdir") or "/",
            "capabilities": caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": node["rlimit_nofile"][0],
                         "hard": node["rlimit_nofile"][1]}],
            "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False,
            "oomScoreAdj": oom_score_adj(container, node["machine_memory"]),
        },
        "root": {"path": "rootfs", "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "mounts": mounts,
        "linux": linux,
        "annotations": {"io.kubernetes.pod.name": node["pod_name"], "io.kubernetes.pod.namespace": node["namespace"],
                        "io.kubernetes.container.name": container["name"]},
    }
    if not host_network:  # a hostname needs the Pod's own UTS namespace
        config["hostname"] = node["hostname"]
    return config


def image_config(stage):
    """The image's configuration from the Dockerfile's runtime stage (bench/image/runtime_stage.py): its USER,
    ENV over the base image's PATH (debian:*-slim sets only PATH), ENTRYPOINT and CMD."""
    return {"user": stage["USER_SPEC"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + list(stage["ENV_LIST"]),
            "entrypoint": json.loads(stage["ENTRYPOINT_JSON"]), "cmd": json.loads(stage["CMD_JSON"]), "workdir": "/",
            "binary": stage["BINARY_PATH"]}
