#!/usr/bin/env python3
"""Starts a Pod's container the way a container runtime does, on a machine without Kubernetes, so the pod code
path meets the isolation it meets on a cluster (a harness that ran Pods as plain host processes once hid a defect
that broke every MPS Pod). Used by podsim.py (one Job) and kubectl-sim.py (`plan --kubernetes`).

Each container gets, as runc under containerd/CRI-O gives it:
  - its own PID namespace with its own /proc (the worker is pid 1), IPC namespace, UTS namespace (hostname = the
    Pod's hostname), mount namespace, and network namespace with eth0 on a bridge (`Cluster`), unless the Pod asks
    for hostPID / hostIPC / hostNetwork;
  - a root file system made of the image (the host's /usr, /etc, /opt, ... read-only, standing in for the image
    and for what the NVIDIA runtime injects: libcuda, nvidia-cuda-mps-control) and the binary at the image's path
    (/usr/local/bin/sharebench), read-only when readOnlyRootFilesystem is set;
  - a private /dev with the basic nodes, and the NVIDIA device nodes only when the Pod has a GPU (a DRA claim, an
    nvidia.com/gpu limit, or NVIDIA_VISIBLE_DEVICES with the nvidia runtime class); a private 64 MiB /dev/shm;
  - only the volumes the Pod declares: emptyDir (a fresh directory, or tmpfs for medium Memory), configMap
    (read-only), hostPath (checked against its type, as the kubelet does), plus the CDI edits of a GPU claim:
    an MPS claim of NVIDIA's DRA driver bind-mounts the claim's MPS pipe directory at /tmp/nvidia-mps and its shm
    directory at /dev/shm and sets CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps (k8s-dra-driver, sharing.go);
  - /etc/hosts written as the kubelet writes it, plus the peers' `<hostname>.<subdomain>` names that the cluster
    DNS would answer for the headless Service;
  - the securityContext's uid and gid (else the image's USER, 65532), no supplementary groups, no_new_privs;
  - only the container's environment (its env, Downward API values, the CDI env, HOSTNAME and the image's PATH, or
    the ENV of "your image" from SIM_IMAGE_ENV), never the caller's.
Not emulated: cgroup limits (CPU and memory requests/limits), seccomp and capability sets beyond what a non-root
uid implies, image pulls.

Layout: the caller (root) runs `Cluster` in the node's namespaces; `start()` runs this file as a shim process
(`_container SPEC.json`) that enters the Pod's network namespace, unshares the others, forks the container's
pid 1, forwards SIGTERM to it and exits with its status; if the shim is SIGKILLed, pid 1 gets SIGKILL too.
"""
import base64
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_PIVOT_ROOT = 155  # x86-64
IMAGE_BINARY = "/usr/local/bin/sharebench"
IMAGE_USER = 65532  # the Dockerfile's USER
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the NVIDIA container runtime puts on the container's PATH and library path on this machine (the driver's
# utilities and libraries live under /usr/local/nvidia here).
NVIDIA_PATH, NVIDIA_LIBS = "/usr/local/nvidia/bin", "/usr/local/nvidia/lib64"
IMAGE_DIRS = ["usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32"]
IMAGE_COPIED = {"etc"}  # copied into the root (mount points may be made in it); the others bound read-only
DEVICE_NODES = ["null", "zero", "full", "random", "urandom", "tty"]
DRA_MPS_PIPE = "/tmp/nvidia-mps"  # where NVIDIA's DRA driver mounts the claim's MPS pipe directory

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))


def mount(source, target, fstype=None, flags=0, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
           "mount %s on %s" % (source, target))


def bind(source, target, read_only):
    mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


# ---------------------------------------------------------------------------------------------------------------
# The cluster side: a bridge, one network namespace per Pod, the container spec built from the rendered Pod.


class Cluster:
    """A one-node cluster's Pod network: bridge `sbbr0` with 169.254.77.1/24 (link-local: nothing outside this
    machine is ever addressed), each Pod a network namespace with eth0 on it. Needs pyroute2 (carried as a wheel)."""

    BRIDGE, PREFIX = "sbbr0", "169.254.77."

    def __init__(self, state):
        from pyroute2 import IPRoute  # noqa: F401  (fail early, with the import error, where it is missing)
        self.state = state
        os.makedirs(state, exist_ok=True)
        self.next_ip = 10
        self.namespaces = []
        with self._ipr() as ipr:
            if not ipr.link_lookup(ifname=self.BRIDGE):
                ipr.link("add", ifname=self.BRIDGE, kind="bridge")
                index = ipr.link_lookup(ifname=self.BRIDGE)[0]
                ipr.addr("add", index=index, address=self.PREFIX + "1", prefixlen=24)
                ipr.link("set", index=index, state="up")

    @staticmethod
    def _ipr():
        from pyroute2 import IPRoute
        return IPRoute()

    def add_pod(self, pod_name):
        """A network namespace for the Pod with eth0 on the bridge; returns (namespace path, address)."""
        from pyroute2 import NetNS, netns
        ip = self.PREFIX + str(self.next_ip)
        self.next_ip += 1
        ns = "sb-" + pod_name[-40:]
        netns.create(ns)
        self.namespaces.append(ns)
        host_end = "sbv%d" % (self.next_ip - 1)
        with self._ipr() as ipr:
            ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": ns})
            index = ipr.link_lookup(ifname=host_end)[0]
            ipr.link("set", index=index, master=ipr.link_lookup(ifname=self.BRIDGE)[0], state="up")
        with NetNS(ns) as inside:
            eth0 = inside.link_lookup(ifname="eth0")[0]
            inside.addr("add", index=eth0, address=ip, prefixlen=24)
            inside.link("set", index=eth0, state="up")
            inside.link("set", index=inside.link_lookup(ifname="lo")[0], state="up")
        return "/var/run/netns/" + ns, ip

    def close(self):
        from pyroute2 import netns
        for ns in self.namespaces:
            try:
                netns.remove(ns)  # the veth pair goes with it
            except OSError:
                pass
        self.namespaces = []


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


def hosts_file(own_ip, hostname, subdomain, namespace, peers):
    """/etc/hosts as the kubelet writes it, plus the peers the cluster DNS would resolve."""
    lines = ["# Kubernetes-managed hosts file (emulated by bench/device/podrun.py).", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback"]
    fqdn = "%s.%s.%s.svc.cluster.local" % (hostname, subdomain, namespace) if subdomain else None
    if own_ip:
        lines.append("%s\t%s" % (own_ip, "\t".join(n for n in (fqdn, hostname) if n)))
    lines.append("# cluster DNS for the headless Service (emulated):")
    for peer_host, peer_ip in sorted(peers.items()):
        if subdomain and peer_ip:
            lines.append("%s\t%s.%s\t%s.%s.%s.svc.cluster.local" % (peer_ip, peer_host, subdomain, peer_host, subdomain,
                                                                    namespace))
    return "\n".join(lines) + "\n"


def container_spec(pod_spec, container, env, args, hostname, pod_dir, netns, ip, peers, volumes, claim_edits,
                   binary, namespace="default"):
    """Everything the shim needs, from the rendered Pod. `volumes`: name -> host directory for configMap volumes
    already materialised. `claim_edits`: claim name -> {"mounts": [(host, container)], "env": {...}} (CDI)."""
    sc = dict(pod_spec.get("securityContext", {}))
    sc.update({k: v for k, v in container.get("securityContext", {}).items() if k in ("runAsUser", "runAsGroup")})
    uid = sc.get("runAsUser", IMAGE_USER)
    gid = sc.get("runAsGroup", uid if "runAsUser" in sc else IMAGE_USER)
    if sc.get("runAsNonRoot") and uid == 0:
        raise PodFailed("CreateContainerConfigError", "container has runAsNonRoot and image will run as root")
    mounts, full_env = [], {}
    by_name = {v["name"]: v for v in pod_spec.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        volume = by_name.get(m["name"])
        if volume is None:
            raise PodFailed("CreateContainerConfigError", "volumeMount %s names no volume" % m["name"])
        read_only = bool(m.get("readOnly"))
        if "emptyDir" in volume:
            if volume["emptyDir"].get("medium") == "Memory":
                size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m").replace("Gi", "g")
                mounts.append({"kind": "tmpfs", "target": m["mountPath"], "options": "size=%s,mode=1777" % size})
                continue
            source = os.path.join(pod_dir, "volumes", m["name"])
            os.makedirs(source, exist_ok=True)
            os.chmod(source, 0o777)  # an emptyDir is writable by the Pod's user
        elif "configMap" in volume:
            source, read_only = volumes[m["name"]], True
        elif "hostPath" in volume:
            source = volume["hostPath"]["path"]
            kind = volume["hostPath"].get("type", "")
            if kind == "DirectoryOrCreate":
                os.makedirs(source, exist_ok=True)
            elif kind == "Directory" and not os.path.isdir(source):
                raise PodFailed("ContainerCreating", "hostPath type check failed: %s is not a directory" % source)
            elif not os.path.exists(source):
                raise PodFailed("ContainerCreating", "hostPath %s does not exist" % source)
        else:
            raise PodFailed("Unsupported", "volume %s: only emptyDir, configMap and hostPath are emulated" % m["name"])
        mounts.append({"kind": "bind", "source": source, "target": m["mountPath"], "read_only": read_only})
    gpu = gpu_access(pod_spec, container)
    for claim in (gpu[1] if gpu and gpu[0] == "dra" else []):
        edits = claim_edits.get(claim, {})
        for host, target in edits.get("mounts", []):
            mounts.append({"kind": "bind", "source": host, "target": target, "read_only": False})
        full_env.update(edits.get("env", {}))
    if gpu and gpu[0] == "device-plugin":
        edits = claim_edits.get("nvidia.com/gpu", {})
        for host, target in edits.get("mounts", []):
            mounts.append({"kind": "bind", "source": host, "target": target, "read_only": False})
        full_env.update(edits.get("env", {}))
    # containerd orders mounts by depth, so a mount inside a volume lands on top of it.
    mounts.sort(key=lambda m: len([p for p in m["target"].split("/") if p]))
    base_env = {"PATH": IMAGE_PATH + (":" + NVIDIA_PATH if gpu else ""), "HOSTNAME": hostname}
    base_env.update(image_env())
    base_env.update(env)
    base_env.update(full_env)
    if gpu:
        base_env.setdefault("LD_LIBRARY_PATH", NVIDIA_LIBS)
    with open(os.path.join(pod_dir, "hosts"), "w") as f:
        f.write(hosts_file(ip, hostname, pod_spec.get("subdomain"), namespace, peers))
    with open(os.path.join(pod_dir, "hostname"), "w") as f:
        f.write(hostname + "\n")
    return {
        "hostname": hostname,
        "netns": None if pod_spec.get("hostNetwork") else netns,
        "host_pid": bool(pod_spec.get("hostPID")),
        "host_ipc": bool(pod_spec.get("hostIPC")),
        "uid": uid,
        "gid": gid,
        "no_new_privs": container.get("securityContext", {}).get("allowPrivilegeEscalation") is False,
        "read_only_root": bool(container.get("securityContext", {}).get("readOnlyRootFilesystem")),
        "gpu": gpu is not None,
        "binary": os.path.abspath(binary),
        # The user's own files in their image (a tenant's script, added by a Dockerfile `COPY`): host:image
        # pairs from SIM_IMAGE_FILES, read-only at their image path.
        "image_files": [pair.split(":", 1) for pair in os.environ.get("SIM_IMAGE_FILES", "").split(",") if pair],
        "working_dir": container.get("workingDir", "/"),
        "root": os.path.join(pod_dir, "root"),
        "pod_dir": pod_dir,
        "mounts": mounts,
        "env": base_env,
        "argv": [IMAGE_BINARY] + list(args),
    }


class PodFailed(Exception):
    """The Pod could not start, as the kubelet would refuse it (reason, message)."""

    def __init__(self, reason, message):
        super().__init__("%s: %s" % (reason, message))
        self.reason, self.message = reason, message


def start(spec, log_file):
    """Starts the shim for `spec`; returns its Popen. The container's stdout and stderr go to `log_file`."""
    os.makedirs(spec["pod_dir"], exist_ok=True)
    spec_path = os.path.join(spec["pod_dir"], "container.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "_container", spec_path], stdout=log_file,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={"PATH": os.environ["PATH"]})


def image_env():
    """The user's image's own ENV (a Dockerfile `ENV`, e.g. the PATH or PYTHONPATH of its Python): K=V pairs from
    SIM_IMAGE_ENV, separated by ';'. The container's env overrides them, as it does in a cluster."""
    pairs = [p.split("=", 1) for p in os.environ.get("SIM_IMAGE_ENV", "").split(";") if "=" in p]
    return {k: v for k, v in pairs}


def expand(text, env):
    """Kubelet's $(VAR) expansion: known variables are replaced, $$ escapes, unknown references stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def pod_env(container, labels_of_template, index, pod_name, controller_uid, secrets=None):
    """The container's env as the kubelet resolves it: values, $(VAR) references, Downward API fields, keys of
    Secrets (an optional one that is missing sets nothing)."""
    env = {"JOB_COMPLETION_INDEX": str(index)}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        ref = var["valueFrom"].get("secretKeyRef")
        if ref is not None:
            data = (secrets or {}).get(ref["name"], {}).get("data", {})
            if ref["key"] in data:
                env[var["name"]] = base64.b64decode(data[ref["key"]]).decode()
            elif not ref.get("optional"):
                raise SystemExit("secret %s key %s not found (a Pod would not start)" % (ref["name"], ref["key"]))
            continue
        path = var["valueFrom"]["fieldRef"]["fieldPath"]
        labels = dict(labels_of_template)
        labels["batch.kubernetes.io/controller-uid"] = controller_uid
        labels["batch.kubernetes.io/job-completion-index"] = str(index)
        fields = {"metadata.name": pod_name, "metadata.namespace": "default"}
        fields.update({"metadata.labels['%s']" % k: v for k, v in labels.items()})
        env[var["name"]] = fields[path]
    return env


def sharing_strategies(objects):
    """Claim name -> sharing strategy ("MPS", "TimeSlicing") of the ResourceClaims; device plugin -> its mode."""
    out = {}
    for o in objects:
        if o["kind"] == "ResourceClaim":
            for c in o["spec"]["devices"].get("config", []):
                strategy = c.get("opaque", {}).get("parameters", {}).get("sharing", {}).get("strategy")
                if strategy:
                    out[o["metadata"]["name"]] = strategy
        if o["kind"] == "ConfigMap" and "device-plugin" in o["metadata"]["name"]:
            text = "\n".join(o.get("data", {}).values())
            out["nvidia.com/gpu"] = "MPS" if "mps:" in text else "TimeSlicing"
    return out


class JobPods:
    """The Pods of one rendered Indexed Job, each started by `start` with the Job's isolation. `mps_pipe_dir`
    is the MPS daemon an MPS claim gets (NVIDIA's DRA driver starts one per claim; the caller starts it here)."""

    def __init__(self, objects, binary, state, mps_pipe_dir, arg_overrides=None):
        self.objects, self.binary, self.state = objects, binary, state
        self.job = next(o for o in objects if o["kind"] == "Job")
        self.template = self.job["spec"]["template"]
        self.pod_spec = self.template["spec"]
        self.container = self.pod_spec["containers"][0]
        self.arg_overrides = arg_overrides or {}
        self.cluster = None if self.pod_spec.get("hostNetwork") else self._pod_network(state)
        self.volumes = self._config_maps()
        self.claim_edits = self._claim_edits(mps_pipe_dir)
        self.controller_uid = str(uuid.uuid4())
        self.pods = []

    @staticmethod
    def _pod_network(state):
        try:
            return Cluster(os.path.join(state, "net"))
        except Exception as e:  # no pyroute2, or a kernel without bridge/veth: say so loudly, never silently
            print("podrun: WARNING: no Pod network (%s): the Pods share the node's network namespace" % e,
                  file=sys.stderr)
            return None

    def _config_maps(self):
        maps = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "ConfigMap"}
        out = {}
        for volume in self.pod_spec.get("volumes", []):
            if "configMap" in volume:
                target = os.path.join(self.state, "configmaps", volume["name"])
                os.makedirs(target, exist_ok=True)
                for key, text in maps[volume["configMap"]["name"]].get("data", {}).items():
                    with open(os.path.join(target, key), "w") as f:
                        f.write(text)
                out[volume["name"]] = target
        return out

    def _claim_edits(self, mps_pipe_dir):
        """The CDI edits each GPU claim of the Pod brings, keyed by the container's claim name."""
        strategies = sharing_strategies(self.objects)
        by_pod_claim = {c["name"]: c.get("resourceClaimName") for c in self.pod_spec.get("resourceClaims", [])}
        edits = {}
        for claim in self.container.get("resources", {}).get("claims", []):
            if strategies.get(by_pod_claim.get(claim["name"])) == "MPS":
                shm = os.path.join(self.state, "claims", claim["name"], "shm")
                os.makedirs(shm, exist_ok=True)
                os.chmod(shm, 0o1777)
                edits[claim["name"]] = {"mounts": [(mps_pipe_dir, DRA_MPS_PIPE), (shm, "/dev/shm")],
                                        "env": {"CUDA_MPS_PIPE_DIRECTORY": DRA_MPS_PIPE}}
        if gpu_access(self.pod_spec, self.container) == ("device-plugin", None) and \
                strategies.get("nvidia.com/gpu") == "MPS":
            raise PodFailed("Unsupported", "the device plugin's MPS sharing is not emulated: use the DRA overlays")
        return edits

    def start(self, index):
        """Creates the Pod of completion index `index` (name, hostname, address); `launch` starts them all."""
        job_name = self.job["metadata"]["name"]
        name = "%s-%d-%s" % (job_name, index, uuid.uuid4().hex[:5])
        hostname = "%s-%d" % (job_name, index)  # an Indexed Job's Pod hostname
        secrets = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "Secret"}
        env = pod_env(self.container, self.template["metadata"].get("labels", {}), index, name, self.controller_uid,
                      secrets)
        args = [expand(a, env) for a in self.container.get("args", [])]
        for flag, value in self.arg_overrides.items():
            if flag in args:
                args[args.index(flag) + 1] = value
        pod_dir = os.path.join(self.state, "pods", name)
        os.makedirs(pod_dir, exist_ok=True)
        netns, ip = self.cluster.add_pod(name) if self.cluster else (None, "127.0.0.1")
        pod = {"name": name, "index": index, "hostname": hostname, "ip": ip, "pod_dir": pod_dir, "netns": netns,
               "env": env, "args": args}
        self.pods.append(pod)
        return pod

    def launch(self, log_files):
        """Writes every Pod's spec (now that all addresses are known, for the hosts files) and starts them."""
        peers = {p["hostname"]: p["ip"] for p in self.pods}
        for pod in self.pods:
            try:
                spec = container_spec(self.pod_spec, self.container, pod["env"], pod["args"], pod["hostname"],
                                      pod["pod_dir"], pod["netns"], pod["ip"], peers, self.volumes,
                                      self.claim_edits, self.binary)
            except PodFailed as e:  # the kubelet leaves such a Pod waiting, with the reason
                pod["proc"], pod["waiting"] = None, {"reason": e.reason, "message": e.message}
                print("pod %s cannot start: %s" % (pod["name"], e), file=sys.stderr)
                continue
            pod["proc"] = start(spec, log_files[pod["name"]])
            print("pod %s (%s): sharebench %s" % (pod["name"], pod["ip"] or "host network", " ".join(pod["args"])),
                  file=sys.stderr)

    def close(self):
        if self.cluster:
            self.cluster.close()


# ---------------------------------------------------------------------------------------------------------------
# The shim and the container's pid 1.


def build_root(spec):
    """The container's root file system, inside its own mount namespace."""
    root = spec["root"]
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", MS_NOSUID, "mode=755,size=256m")
    for d in IMAGE_DIRS:
        host = "/" + d
        if os.path.islink(host):
            os.symlink(os.readlink(host), os.path.join(root, d))
        elif d in IMAGE_COPIED:
            # The image's own files, in the container's root: the runtime can create mount points in it (a
            # ConfigMap at /etc/sharebench) before the root turns read-only, and the node's /etc stays untouched.
            shutil.copytree(host, os.path.join(root, d), symlinks=True, ignore_dangling_symlinks=True)
        elif os.path.isdir(host):
            os.makedirs(os.path.join(root, d))
            bind(host, os.path.join(root, d), True)
    # The image's own /usr/local/bin holds the binary alone.
    local_bin = os.path.join(root, IMAGE_BINARY.lstrip("/").rsplit("/", 1)[0])
    mount("tmpfs", local_bin, "tmpfs", MS_NOSUID, "mode=755,size=1m")
    target = os.path.join(root, IMAGE_BINARY.lstrip("/"))
    open(target, "w").close()
    bind(spec["binary"], target, True)
    mount(None, local_bin, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)
    for host, in_image in spec.get("image_files", []):
        at = os.path.join(root, in_image.lstrip("/"))
        os.makedirs(at, exist_ok=True)
        bind(os.path.abspath(host), at, True)
    for d in ("proc", "sys", "dev", "tmp", "run", "var", "root", "home"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    dev = os.path.join(root, "dev")
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=64k")
    nodes = list(DEVICE_NODES)
    if spec["gpu"]:
        nodes += sorted(n for n in os.listdir("/dev") if n.startswith("nvidia") and n != "nvidia-caps")
    for n in nodes:
        if os.path.exists("/dev/" + n):
            open(os.path.join(dev, n), "w").close()
            bind("/dev/" + n, os.path.join(dev, n), False)
    for name, link in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                       ("stderr", "/proc/self/fd/2")):
        os.symlink(link, os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "shm"))
    mount("shm", os.path.join(dev, "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    if spec["host_pid"]:
        bind("/proc", os.path.join(root, "proc"), False)
    else:
        mount("proc", os.path.join(root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    bind("/sys", os.path.join(root, "sys"), True)
    for name in ("hosts", "hostname"):
        if os.path.exists(os.path.join(root, "etc", name)):  # the image's file, replaced as the kubelet does
            bind(os.path.join(spec["pod_dir"], name), os.path.join(root, "etc", name), True)
    for m in spec["mounts"]:
        target = os.path.join(root, m["target"].lstrip("/"))
        if m["kind"] == "tmpfs":
            os.makedirs(target, exist_ok=True)
            mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, m["options"])
            continue
        if os.path.isdir(m["source"]):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if not os.path.exists(target):
                open(target, "w").close()
        bind(m["source"], target, m["read_only"])
    # pivot_root into it and drop the node's tree.
    os.chdir(root)
    os.makedirs(".oldroot", exist_ok=True)
    _check(libc.syscall(SYS_PIVOT_ROOT, b".", b".oldroot"), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.oldroot", MNT_DETACH), "umount the old root")
    os.rmdir("/.oldroot")
    if spec["read_only_root"]:
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def container_main(spec):
    """pid 1 of the container: its own mount namespace and file system, hostname, user, then the entrypoint."""
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    # A mount namespace of its own (not the shim's): pivot_root moves every process of a namespace.
    _check(libc.unshare(CLONE_NEWNS), "unshare(mount)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    build_root(spec)
    socket.sethostname(spec["hostname"])
    os.setgroups([])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    # The parent-death signal is cleared by a change of credentials: set it again.
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if spec["no_new_privs"]:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    os.chdir(spec.get("working_dir", "/"))
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


def shim(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    if spec["netns"]:
        fd = os.open(spec["netns"], os.O_RDONLY)
        _check(libc.setns(fd, CLONE_NEWNET), "setns(net)")
        os.close(fd)
    flags = CLONE_NEWUTS | (0 if spec["host_ipc"] else CLONE_NEWIPC)
    flags |= 0 if spec["host_pid"] else CLONE_NEWPID
    _check(libc.unshare(flags), "unshare")
    child = os.fork()
    if child == 0:
        try:
            container_main(spec)
        except BaseException as e:  # a container that cannot start: say why, as the runtime would
            sys.stderr.write("podrun: container failed to start: %s\n" % e)
            sys.stderr.flush()
        os._exit(128)
    with open(os.path.join(spec["pod_dir"], "pid1"), "w") as f:
        f.write(str(child))
    signal.signal(signal.SIGTERM, lambda *_: os.kill(child, signal.SIGTERM))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


if __name__ == "__main__":
    if sys.argv[1:2] == ["_container"]:
        shim(sys.argv[2])
    else:
        sys.exit(__doc__)
