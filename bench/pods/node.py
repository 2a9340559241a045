"""The node side of a one-node cluster without Kubernetes: what the kubelet, CRI-O, CDI and the CNI plugin do
around the runtime, so that every Pod of a rendered Indexed Job is started by crun (or runc) from an OCI spec.
Used by bench/device/podsim.py (one Job) and bench/device/kubectl-sim.py (`plan --kubernetes`).

For each Pod: the image's root (the Dockerfile's runtime stage: a Debian root from bench/image/image-root.sh
and the binary at its path; or, for "your image" of a command group, the node's own /usr, /etc, /opt, read-only) as the
lower layer of an overlay of its own, as containers/storage gives one; the kubelet's files (/etc/hosts with the
Service's peers, /etc/hostname, /etc/resolv.conf, /dev/termination-log); the declared volumes under the Pod's
directory (emptyDir, configMap, hostPath checked against its type); a network namespace on the bridge
(network.py); the CDI edits of its GPU (the NVIDIA device nodes, the driver's compute and utility libraries and
programs found on this node mounted read-only where a CDI spec of NVIDIA's toolkit puts them, their soname links
made as its create-symlinks hook makes them; an MPS claim's pipe and shm directories); a cgroup under
/kubepods/<qos>/pod<uid>; then `crun run` of the bundle whose config.json translate.py wrote. Deleting a Pod is
`crun kill` SIGTERM, then SIGKILL after the grace period, as the kubelet does it.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "image"))
import kubelet  # noqa: E402
import seccomp  # noqa: E402
import translate  # noqa: E402
from translate import PodFailed  # noqa: E402

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# What NVIDIA's container toolkit injects for NVIDIA_DRIVER_CAPABILITIES=compute,utility (libnvidia-container's
# lists): the driver's libraries and programs, found on this node in these directories.
DRIVER_LIBS = ["libcuda", "libcudadebugger", "libnvidia-opencl", "libnvidia-gpucomp", "libnvidia-ptxjitcompiler",
               "libnvidia-allocator", "libnvidia-pkcs11-openssl3", "libnvidia-nvvm", "libnvidia-ml", "libnvidia-cfg"]
DRIVER_PROGRAMS = ["nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
                   "nvidia-cuda-mps-server"]
LIB_DIRS = ["/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64"]
BIN_DIRS = ["/usr/local/nvidia/bin", "/usr/bin"]
CONTAINER_LIB_DIR, CONTAINER_BIN_DIR = "/usr/lib/x86_64-linux-gnu", "/usr/bin"
CONTROL_NODES = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"]
HOST_IMAGE_DIRS = ["usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32"]
GRACE_SECONDS = 30  # terminationGracePeriodSeconds' default


def runtime_binary():
    """crun (CRI-O's default) where the node's cgroups are unified (v2), else runc; SB_RUNTIME overrides."""
    if os.environ.get("SB_RUNTIME"):
        return os.environ["SB_RUNTIME"]
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return shutil.which("crun") if unified and shutil.which("crun") else shutil.which("runc") or "runc"


def driver_edits(at_host_paths=False):
    """The CDI edits of one NVIDIA GPU on this node: device nodes, (host, container, mode) mounts, the soname
    links (container link -> target) the toolkit's create-symlinks hook makes, and env. `at_host_paths`: mount
    each file where the node has it (the node's own root as the image: its links are there already) and put the
    driver's directories on the search paths, as the update-ldcache hook puts them in the ld cache."""
    devices = []
    gpus = sorted(n for n in os.listdir("/dev") if n.startswith("nvidia") and n[6:].isdigit())
    for name in CONTROL_NODES + gpus:
        path = "/dev/" + name
        if os.path.exists(path):
            st = os.stat(path)
            devices.append({"path": path, "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev)})
    mounts, links = [], {}
    for lib_dir in (d for d in LIB_DIRS if os.path.isdir(d)):
        names = os.listdir(lib_dir)
        for lib in DRIVER_LIBS:
            # The file of the driver's version (libcuda.so.580.159.04), not its soname links.
            real = [n for n in names if n.startswith(lib + ".so.") and not os.path.islink(os.path.join(lib_dir, n))
                    and n.count(".") >= 4]
            for n in real:
                if any(m[1].endswith("/" + n) for m in mounts):
                    continue
                inside = lib_dir if at_host_paths else CONTAINER_LIB_DIR
                mounts.append((os.path.join(lib_dir, n), os.path.join(inside, n), "ro"))
                for alias in names:
                    if os.path.islink(os.path.join(lib_dir, alias)) and \
                            os.path.basename(os.path.realpath(os.path.join(lib_dir, alias))) == n:
                        links[os.path.join(inside, alias)] = n
    for program in DRIVER_PROGRAMS:
        found = next((os.path.join(d, program) for d in BIN_DIRS if os.path.exists(os.path.join(d, program))), None)
        if found:
            mounts.append((found, found if at_host_paths else os.path.join(CONTAINER_BIN_DIR, program), "ro"))
    if not any(os.path.basename(m[0]).startswith("libcuda.so.") for m in mounts):
        raise PodFailed("ContainerCreating", "no libcuda.so.<driver version> in %s: the node has no driver" % LIB_DIRS)
    env = {}
    if at_host_paths:
        dirs = sorted({os.path.dirname(m[1]) for m in mounts})
        env = {"PATH": ":".join(["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] +
                                [d for d in dirs if d.endswith("bin")]),
               "LD_LIBRARY_PATH": ":".join(d for d in dirs if not d.endswith("bin"))}
    return {"devices": devices, "mounts": mounts, "links": {} if at_host_paths else links, "env": env}


class Image:
    """The image's root, unpacked once on the node, and its configuration (from the Dockerfile)."""

    def __init__(self, state, binary, root_tar=None):
        import runtime_stage
        with open(os.path.join(REPO, "Dockerfile")) as f:
            self.config = translate.image_config(runtime_stage.runtime_stage(f.read()))
        self.dir = os.path.join(state, "image")
        self.host_image = root_tar is None  # "your image": the node's own root stands in for it
        os.makedirs(self.dir, exist_ok=True)
        if self.host_image:
            self.config["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"] + [
                p for p in os.environ.get("SIM_IMAGE_ENV", "").split(";") if "=" in p]
            self.binary = os.path.abspath(binary)
            return
        subprocess.run(["tar", "-xf", os.path.abspath(root_tar), "-C", self.dir], check=True)
        target = os.path.join(self.dir, self.config["binary"].lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(binary, target)  # the Dockerfile's COPY --from=build
        os.chmod(target, 0o755)

    def root_for(self, pod_dir):
        """The Pod's root file system: an overlay on the image (or read-only binds of the node's root)."""
        root = os.path.join(pod_dir, "bundle", "rootfs")
        os.makedirs(root, exist_ok=True)
        if not self.host_image:
            upper, work = os.path.join(pod_dir, "upper"), os.path.join(pod_dir, "work")
            os.makedirs(upper, exist_ok=True)
            os.makedirs(work, exist_ok=True)
            subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            "lowerdir=%s,upperdir=%s,workdir=%s" % (self.dir, upper, work), root], check=True)
            return root
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=256m", "tmpfs", root], check=True)
        for d in HOST_IMAGE_DIRS:
            host, inside = "/" + d, os.path.join(root, d)
            if os.path.islink(host):
                os.symlink(os.readlink(host), inside)
            elif d == "etc":
                shutil.copytree(host, inside, symlinks=True, ignore_dangling_symlinks=True)
            elif os.path.isdir(host):
                os.makedirs(inside)
                subprocess.run(["mount", "--rbind", "-o", "ro", host, inside], check=True)
                subprocess.run(["mount", "-o", "remount,bind,ro", inside], check=True)
        at = os.path.join(root, self.config["binary"].lstrip("/"))  # the binary alone in its image directory
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "tmpfs", os.path.dirname(at)], check=True)
        open(at, "w").close()
        subprocess.run(["mount", "--bind", "-o", "ro", self.binary, at], check=True)
        for pair in (p for p in os.environ.get("SIM_IMAGE_FILES", "").split(",") if p):
            host, in_image = pair.split(":", 1)  # the user's own files in their image (a Dockerfile COPY)
            at = os.path.join(root, in_image.lstrip("/"))
            os.makedirs(at, exist_ok=True)
            subprocess.run(["mount", "--rbind", "-o", "ro", os.path.abspath(host), at], check=True)
        return root


def render_overlay(directory, kubectl="kubectl"):
    """`kubectl kustomize DIR` as JSON objects, through the real kubectl's offline patch (no server needed)."""
    yaml_text = subprocess.run([kubectl, "kustomize", directory], check=True, capture_output=True, text=True).stdout
    out = subprocess.run([kubectl, "patch", "--local", "-f", "-", "--type", "merge", "-p", "{}", "-o", "json"],
                         input=yaml_text, check=True, capture_output=True, text=True).stdout
    decoder, i, objects = json.JSONDecoder(), 0, []
    while True:
        while i < len(out) and out[i].isspace():
            i += 1
        if i >= len(out):
            return objects
        obj, i = decoder.raw_decode(out, i)
        objects.append(obj)


def unmount_under(path):
    """Lazily unmounts everything at or below `path`, deepest first."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f]
    for point in sorted((p for p in points if p == path or p.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)


class JobPods:
    """The Pods of one rendered Indexed Job on this node. `mps_pipe_dir`: the MPS daemon an MPS claim gets
    (NVIDIA's DRA driver starts one per claim; the caller starts it here). `root_tar`: the image's root (None:
    the node's root as "your image")."""

    def __init__(self, objects, binary, state, mps_pipe_dir, arg_overrides=None, root_tar=None):
        from network import Cluster
        self.objects, self.state = objects, os.path.abspath(state)
        self.job = next(o for o in objects if o["kind"] == "Job")
        self.template = self.job["spec"]["template"]
        self.pod_spec = self.template["spec"]
        self.container = self.pod_spec["containers"][0]
        self.arg_overrides = arg_overrides or {}
        self.runtime = runtime_binary()
        self.image = Image(self.state, binary, root_tar if root_tar is not None else os.environ.get("SIM_IMAGE_ROOT"))
        self.cluster = None
        if not self.pod_spec.get("hostNetwork"):
            try:
                self.cluster = Cluster(os.path.join(self.state, "net"))
            except Exception as e:  # no pyroute2, or no bridge/veth: say so loudly, never silently
                print("node: WARNING: no Pod network (%s): the Pods share the node's network namespace" % e,
                      file=sys.stderr)
        self.config_maps = self._config_maps()
        self.mps_pipe_dir = mps_pipe_dir
        self.controller_uid = str(uuid.uuid4())
        # The filter depends on the bounding set only, which is the same for any uid.
        bounding = translate.capabilities(self.container, uid=0)["bounding"]
        self.seccomp = seccomp.oci_seccomp(seccomp.load_profile(), seccomp.GO_ARCH[os.uname().machine], bounding)
        self.pods = []

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

    def start(self, index):
        """Creates the Pod of completion index `index` (name, hostname, address); `launch` starts them all."""
        job_name = self.job["metadata"]["name"]
        name = "%s-%d-%s" % (job_name, index, uuid.uuid4().hex[:5])
        secrets = {o["metadata"]["name"]: o for o in self.objects if o["kind"] == "Secret"}
        pod = {"name": name, "index": index, "hostname": "%s-%d" % (job_name, index), "uid": str(uuid.uuid4()),
               "pod_dir": os.path.join(self.state, "pods", name), "proc": None}
        os.makedirs(pod["pod_dir"], exist_ok=True)
        try:
            pod["env"] = kubelet.pod_env(self.container, self.template["metadata"].get("labels", {}), index, name,
                                         self.controller_uid, secrets)
        except PodFailed as e:
            pod["waiting"] = {"reason": e.reason, "message": e.message}
        pod["netns"], pod["ip"] = self.cluster.add_pod(name) if self.cluster else (None, "127.0.0.1")
        self.pods.append(pod)
        return pod

    def _volumes(self, pod):
        """name -> host directory of each declared volume, made as the kubelet makes them."""
        out = {}
        for volume in self.pod_spec.get("volumes", []):
            name = volume["name"]
            if "emptyDir" in volume:
                out[name] = os.path.join(pod["pod_dir"], "volumes", "kubernetes.io~empty-dir", name)
                os.makedirs(out[name], exist_ok=True)
                os.chmod(out[name], 0o777)  # an emptyDir is writable by the Pod's user
            elif "configMap" in volume:
                out[name] = self.config_maps[name]
            elif "hostPath" in volume:
                path, kind = volume["hostPath"]["path"], volume["hostPath"].get("type", "")
                if kind == "DirectoryOrCreate":
                    os.makedirs(path, exist_ok=True)
                elif kind == "Directory" and not os.path.isdir(path):
                    raise PodFailed("ContainerCreating", "hostPath type check failed: %s is not a directory" % path)
                elif not os.path.exists(path):
                    raise PodFailed("ContainerCreating", "hostPath %s does not exist" % path)
                out[name] = path
        return out

    def _cdi(self, root):
        """The CDI edits of the container's GPU (none without one); the soname links go into its root."""
        access = translate.gpu_access(self.pod_spec, self.container)
        if access is None:
            return {"mounts": [], "env": {}, "devices": []}
        edits = driver_edits(at_host_paths=self.image.host_image)
        for link, target in edits["links"].items():
            at = os.path.join(root, link.lstrip("/"))
            if not os.path.lexists(at):
                os.symlink(target, at)
        cdi = {"mounts": list(edits["mounts"]), "env": dict(edits["env"]), "devices": edits["devices"]}
        strategies = kubelet.sharing_strategies(self.objects)
        if access[0] == "device-plugin" and strategies.get("nvidia.com/gpu") == "MPS":
            raise PodFailed("Unsupported", "the device plugin's MPS sharing is not emulated: use the DRA overlays")
        by_pod_claim = {c["name"]: c.get("resourceClaimName") for c in self.pod_spec.get("resourceClaims", [])}
        for claim in (access[1] if access[0] == "dra" else []):
            if strategies.get(by_pod_claim.get(claim)) == "MPS":
                shm = os.path.join(self.state, "claims", claim, "shm")
                os.makedirs(shm, exist_ok=True)
                os.chmod(shm, 0o1777)
                mounts, env = kubelet.mps_claim_edits(self.mps_pipe_dir, shm)
                cdi["mounts"] += mounts
                cdi["env"].update(env)
        return cdi

    def _pod_files(self, pod, peers):
        files = {"/etc/hosts": kubelet.hosts_file(pod["ip"], pod["hostname"], self.pod_spec.get("subdomain"),
                                                  "default", peers),
                 "/etc/hostname": pod["hostname"] + "\n", "/etc/resolv.conf": kubelet.resolv_conf("default"),
                 translate.TERMINATION_LOG: ""}
        out = {}
        for path, text in files.items():
            out[path] = os.path.join(pod["pod_dir"], path.strip("/").replace("/", "-"))
            with open(out[path], "w") as f:
                f.write(text)
            os.chmod(out[path], 0o644 if path != translate.TERMINATION_LOG else 0o666)
        shm = os.path.join(pod["pod_dir"], "shm")  # the sandbox's /dev/shm: 64 MiB of tmpfs
        os.makedirs(shm, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=1777,size=65536k,nosuid,nodev,noexec", "shm", shm],
                       check=True)
        return out, shm

    def bundle(self, pod, peers):
        """Writes the Pod's bundle (root file system and config.json); returns the bundle directory."""
        args = self.container.get("args")
        if args is not None and self.arg_overrides:
            args = list(args)
            for flag, value in self.arg_overrides.items():
                if flag in args:
                    args[args.index(flag) + 1] = value
        container = dict(self.container, args=args) if args is not None else self.container
        root = self.image.root_for(pod["pod_dir"])
        pod_files, shm = self._pod_files(pod, peers)
        qos = translate.qos_class(container).lower()
        node = {"image": self.image.config, "hostname": pod["hostname"], "env": pod["env"], "pod_name": pod["name"],
                "namespace": "default", "pod_files": pod_files, "shm": shm, "volumes": self._volumes(pod),
                "cdi": self._cdi(root), "netns": pod["netns"],
                "cgroups_path": "/kubepods/%spod%s/%s" % ("" if qos == "guaranteed" else qos + "/", pod["uid"],
                                                         pod["name"]),
                "machine_memory": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                "arch": seccomp.GO_ARCH[os.uname().machine],
                "rlimit_nofile": [r if 0 <= r <= 1048576 else 1048576 for r in resource.getrlimit(resource.RLIMIT_NOFILE)],
                "seccomp": self.seccomp}
        config = translate.oci_config(self.pod_spec, container, node)
        bundle = os.path.dirname(root)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        return bundle

    def launch(self, log_files):
        """Writes every Pod's bundle (now that all addresses are known, for the hosts files) and starts them."""
        peers = {p["hostname"]: p["ip"] for p in self.pods}
        for pod in self.pods:
            try:
                if "waiting" in pod:
                    raise PodFailed(pod["waiting"]["reason"], pod["waiting"]["message"])
                bundle = self.bundle(pod, peers)
            except PodFailed as e:  # the kubelet leaves such a Pod waiting, with the reason
                pod["waiting"] = {"reason": e.reason, "message": e.message}
                print("pod %s cannot start: %s" % (pod["name"], e), file=sys.stderr)
                continue
            pod["proc"] = self._runtime(["run", "--bundle", bundle, pod["name"]], stdout=log_files[pod["name"]],
                                        stderr=subprocess.STDOUT, wait=False)
            print("pod %s (%s) by %s: %s" % (pod["name"], pod["ip"] or "host network", os.path.basename(self.runtime),
                                             " ".join(json.load(open(os.path.join(bundle, "config.json")))
                                                      ["process"]["args"][1:])), file=sys.stderr)

    def _runtime(self, args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, wait=True):
        """Runs the OCI runtime (its own state directory; SB_RUNTIME_LIBS: libraries carried with it)."""
        command = [self.runtime, "--root", os.path.join(self.state, "runtime")] + args
        env = {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": os.environ.get("SB_RUNTIME_LIBS", "")}
        proc = subprocess.Popen(command, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
        if wait:
            proc.wait()
        return proc

    def signal(self, pod, sig):
        """`crun kill` of the Pod's container (SIGTERM on deletion, SIGKILL after the grace period)."""
        self._runtime(["kill", pod["name"], sig])

    def delete(self, pod, grace=GRACE_SECONDS):
        """Deletes a running Pod as the kubelet does: SIGTERM, then SIGKILL after `grace` seconds."""
        if pod["proc"] is None or pod["proc"].poll() is not None:
            return
        self.signal(pod, "TERM")
        try:
            pod["proc"].wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(pod, "KILL")
            pod["proc"].wait()

    def close(self):
        for pod in self.pods:
            self.delete(pod, grace=5)
            self._runtime(["delete", "-f", pod["name"]])
        unmount_under(self.state)
        if self.cluster:
            self.cluster.close()
