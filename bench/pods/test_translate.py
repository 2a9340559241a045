"""Tests of the Pod-to-OCI translation, run on CI (no GPU, no root): golden OCI specs of every rendered overlay's
first Pod on a fixed node (bench/pods/golden/, rewritten with SB_WRITE_GOLDEN=1 after a change that is meant),
and the rules one by one: securityContext, capabilities, seccomp, resources, mounts, namespaces, the command.

    python3 -m unittest discover -s bench/pods -v      (needs kubectl for the golden specs)
"""
import copy
import hashlib
import json
import os
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bench", "image"))
import kubelet  # noqa: E402
import node  # noqa: E402
import runtime_stage  # noqa: E402
import seccomp  # noqa: E402
import translate  # noqa: E402
from translate import PodFailed  # noqa: E402

IMAGE = translate.image_config(runtime_stage.runtime_stage(open(os.path.join(REPO, "Dockerfile")).read()))
# An H200 node as the GPU machine shows it (device numbers, driver 580.159.04).
GPU_EDITS = {
    "devices": [{"path": "/dev/nvidiactl", "major": 195, "minor": 255}, {"path": "/dev/nvidia-uvm", "major": 238, "minor": 0},
                {"path": "/dev/nvidia-uvm-tools", "major": 238, "minor": 1}, {"path": "/dev/nvidia0", "major": 195, "minor": 0}],
    "mounts": [("/usr/local/nvidia/lib64/libcuda.so.580.159.04", "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04", "ro"),
               ("/usr/local/nvidia/bin/nvidia-cuda-mps-control", "/usr/bin/nvidia-cuda-mps-control", "ro")],
}


def first_pod(objects):
    job = next(o for o in objects if o["kind"] == "Job")
    return job, job["spec"]["template"]["spec"], job["spec"]["template"]["spec"]["containers"][0]


def fixed_node(objects, pod_spec, container):
    """The node context of Pod 0 on a fixed node: the same Pod always gives the same spec."""
    job = next(o for o in objects if o["kind"] == "Job")
    env = kubelet.pod_env(container, job["spec"]["template"]["metadata"].get("labels", {}), 0, "sharebench-0-abcde",
                          "00000000-0000-0000-0000-00000000c0de",
                          {"sharebench-barrier-token": {"data": {"token": "c2VjcmV0"}}})
    access = translate.gpu_access(pod_spec, container)
    cdi = {"mounts": [], "env": {}, "devices": []}
    if access:
        cdi = {"mounts": list(GPU_EDITS["mounts"]), "env": {}, "devices": GPU_EDITS["devices"]}
        if kubelet.sharing_strategies(objects).get("sharebench-gpu") == "MPS":
            mounts, mps_env = kubelet.mps_claim_edits("/run/mps/claim/pipe", "/run/mps/claim/shm")
            cdi["mounts"] += mounts
            cdi["env"].update(mps_env)
    pod_dir = "/var/lib/kubelet/pods/0000"
    return {"image": IMAGE, "hostname": "sharebench-0", "env": env, "pod_name": "sharebench-0-abcde",
            "namespace": "default", "shm": pod_dir + "/shm",
            "pod_files": {p: pod_dir + "/" + p.strip("/").replace("/", "-")
                          for p in translate.DNS_AND_HOST_FILES + [translate.TERMINATION_LOG]},
            "volumes": {v["name"]: v.get("hostPath", {}).get("path") or "%s/volumes/%s" % (pod_dir, v["name"])
                        for v in pod_spec.get("volumes", [])},
            "cdi": cdi, "netns": "/var/run/netns/sb-sharebench-0", "cgroups_path": "/kubepods/burstable/pod0000/worker",
            "machine_memory": 128 * 2 ** 30, "arch": "amd64", "rlimit_nofile": [1048576, 1048576],
            "seccomp": seccomp.oci_seccomp(seccomp.load_profile(), "amd64",
                                           translate.capabilities(container, 1)["bounding"])}


def summarised(config):
    """The spec with its seccomp filter as a digest (the filter is the vendored profile's, tested apart)."""
    out = copy.deepcopy(config)
    filt = out["linux"].get("seccomp")
    if filt:
        out["linux"]["seccomp"] = {"defaultAction": filt["defaultAction"], "architectures": filt["architectures"],
                                   "rules": len(filt["syscalls"]),
                                   "sha256": hashlib.sha256(json.dumps(filt, sort_keys=True).encode()).hexdigest()}
    return out


@unittest.skipUnless(shutil.which("kubectl"), "kubectl renders the overlays")
class GoldenSpecs(unittest.TestCase):
    def test_every_overlay_translates_to_its_golden_spec(self):
        overlays = sorted(os.listdir(os.path.join(REPO, "manifests", "overlays")))
        self.assertGreater(len(overlays), 5)
        for overlay in overlays:
            with self.subTest(overlay=overlay):
                objects = node.render_overlay(os.path.join(REPO, "manifests", "overlays", overlay))
                job, pod_spec, container = first_pod(objects)
                spec = summarised(translate.oci_config(pod_spec, container, fixed_node(objects, pod_spec, container)))
                path = os.path.join(HERE, "golden", overlay + ".json")
                text = json.dumps(spec, indent=1, sort_keys=True) + "\n"
                if os.environ.get("SB_WRITE_GOLDEN"):
                    with open(path, "w") as f:
                        f.write(text)
                with open(path) as f:
                    self.assertEqual(text, f.read(), "%s: the spec changed; if meant, SB_WRITE_GOLDEN=1" % overlay)

    def test_the_mps_pod_is_confined_and_reaches_its_claims_daemon(self):
        objects = node.render_overlay(os.path.join(REPO, "manifests", "overlays", "dra-mps"))
        job, pod_spec, container = first_pod(objects)
        spec = translate.oci_config(pod_spec, container, fixed_node(objects, pod_spec, container))
        p, linux = spec["process"], spec["linux"]
        self.assertEqual((p["user"]["uid"], p["user"]["gid"]), (65532, 65532))
        self.assertTrue(p["noNewPrivileges"])
        self.assertEqual(p["capabilities"]["bounding"], [])
        self.assertTrue(spec["root"]["readonly"])
        self.assertEqual(p["args"][:4], ["/usr/local/bin/sharebench", "run", "--mode", "mps"])
        self.assertIn("CUDA_MPS_PIPE_DIRECTORY=/tmp/nvidia-mps", p["env"])
        self.assertIn("SHAREBENCH_BARRIER_TOKEN=secret", p["env"])
        self.assertIn("SHAREBENCH_RUN_ID=experiment-1", p["env"])
        by_target = {m["destination"]: m for m in spec["mounts"]}
        self.assertEqual(by_target["/tmp/nvidia-mps"]["source"], "/run/mps/claim/pipe")
        self.assertEqual(by_target["/dev/shm"]["source"], "/run/mps/claim/shm", "the claim's shm replaces the Pod's")
        self.assertEqual([m["destination"] for m in spec["mounts"]].count("/dev/shm"), 1)
        self.assertEqual(linux["resources"]["memory"], {"limit": 2 ** 30})
        self.assertEqual(linux["resources"]["cpu"], {"shares": 1024})
        self.assertEqual({d["path"] for d in linux["devices"]},
                         {"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia0"})
        self.assertIn({"allow": True, "type": "c", "major": 195, "minor": 0, "access": "rw"},
                      linux["resources"]["devices"])
        self.assertEqual({n["type"] for n in linux["namespaces"]}, {"mount", "cgroup", "pid", "ipc", "uts", "network"})
        self.assertEqual(linux["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO")
        self.assertIn("/proc/kcore", linux["maskedPaths"])
        self.assertEqual(p["oomScoreAdj"], 999)  # Burstable: 1000 - (1000 * 256Mi) / 128Gi in integers

    def test_the_hostpath_overlay_shares_the_nodes_ipc_and_mounts_its_pipe_directory(self):
        objects = node.render_overlay(os.path.join(REPO, "manifests", "overlays", "hostpath-mps"))
        job, pod_spec, container = first_pod(objects)
        spec = translate.oci_config(pod_spec, container, fixed_node(objects, pod_spec, container))
        self.assertNotIn("ipc", {n["type"] for n in spec["linux"]["namespaces"]})
        by_target = {m["destination"]: m for m in spec["mounts"]}
        self.assertEqual(by_target["/tmp/nvidia-mps"]["source"], "/tmp/nvidia-mps")
        self.assertEqual(by_target["/dev/shm"]["type"], "tmpfs", "the memory emptyDir replaces the node's /dev/shm")
        self.assertIn("size=%d" % 2 ** 30, by_target["/dev/shm"]["options"])


def pod(**security):
    spec = {"securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True}, "volumes": [],
            "automountServiceAccountToken": False}
    container = {"name": "worker", "args": ["check"], "securityContext": dict(security),
                 "resources": {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}}
    return spec, container


def bare_node(**changes):
    base = {"image": IMAGE, "hostname": "h", "env": {}, "pod_name": "p", "namespace": "default", "shm": "/shm",
            "pod_files": {p: "/f" + p for p in translate.DNS_AND_HOST_FILES + [translate.TERMINATION_LOG]},
            "volumes": {}, "cdi": {"mounts": [], "env": {}, "devices": []}, "netns": "/ns", "cgroups_path": "/c",
            "machine_memory": 2 ** 37, "arch": "amd64", "rlimit_nofile": [1024, 1024], "seccomp": {"x": 1}}
    base.update(changes)
    return base


class Rules(unittest.TestCase):
    def test_capabilities_start_from_cri_o_defaults_then_drop_and_add(self):
        self.assertEqual(translate.capabilities({"securityContext": {}}, 0)["bounding"],
                         ["CAP_" + c for c in translate.DEFAULT_CAPABILITIES])
        caps = translate.capabilities({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}}, 0)
        self.assertEqual(caps["bounding"], ["CAP_NET_RAW"])
        self.assertEqual(caps["effective"], ["CAP_NET_RAW"], "root keeps what it is given")
        caps = translate.capabilities({"securityContext": {"capabilities": {"drop": ["KILL"]}}}, 65532)
        self.assertNotIn("CAP_KILL", caps["bounding"])
        self.assertEqual(caps["effective"], [], "a non-root process holds them only in its bounding set")
        with self.assertRaises(PodFailed):
            translate.capabilities({"securityContext": {"privileged": True}}, 0)

    def test_the_user_comes_from_the_security_context_else_the_image(self):
        self.assertEqual(translate.user_and_groups({}, {}, "65532:65532"), (65532, 65532, []))
        self.assertEqual(translate.user_and_groups({"securityContext": {"runAsUser": 1000}}, {}, "65532:65532"),
                         (1000, 0, []), "a uid the image does not name gets group 0")
        spec = {"securityContext": {"runAsUser": 1, "runAsGroup": 2, "supplementalGroups": [5], "fsGroup": 7}}
        self.assertEqual(translate.user_and_groups(spec, {"securityContext": {"runAsUser": 3}}, "0"), (3, 2, [5, 7]))
        with self.assertRaises(PodFailed) as e:
            translate.user_and_groups({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, {}, "65532")
        self.assertEqual(e.exception.reason, "CreateContainerConfigError")

    def test_requests_and_limits_become_cgroup_resources_and_an_oom_score(self):
        spec, container = pod()
        container["resources"]["limits"]["cpu"] = "250m"
        res = translate.cgroup_resources(container, [])
        self.assertEqual(res["cpu"], {"shares": 1024, "quota": 25000, "period": 100000})
        self.assertEqual(res["memory"], {"limit": 2 ** 30})
        self.assertEqual(res["devices"][0], {"allow": False, "access": "rwm"})
        guaranteed = {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}
        self.assertEqual(translate.qos_class(guaranteed), "Guaranteed")
        self.assertEqual(translate.oom_score_adj(guaranteed, 2 ** 37), -997)
        self.assertEqual(translate.oom_score_adj({}, 2 ** 37), 1000)
        self.assertEqual(translate.cgroup_resources({}, [])["cpu"], {"shares": 2}, "BestEffort: the least weight")
        with self.assertRaises(PodFailed):
            translate.quantity("12 parsecs")

    def test_seccomp_runtime_default_is_the_profile_for_the_capabilities_held(self):
        profile = seccomp.load_profile()
        none = seccomp.oci_seccomp(profile, "amd64", [])
        admin = seccomp.oci_seccomp(profile, "amd64", ["CAP_SYS_ADMIN"])
        def names(f, action):
            return {n for r in f["syscalls"] if r["action"] == action and not r.get("args") for n in r["names"]}
        self.assertIn("bpf", names(none, "SCMP_ACT_ERRNO"), "refused without CAP_SYS_ADMIN")
        self.assertNotIn("bpf", names(none, "SCMP_ACT_ALLOW"))
        self.assertIn("bpf", names(admin, "SCMP_ACT_ALLOW"))
        self.assertNotIn("bpf", names(admin, "SCMP_ACT_ERRNO"))
        self.assertIn("init_module", names(none, "SCMP_ACT_ERRNO"))
        allowed = names(none, "SCMP_ACT_ALLOW")
        self.assertIn("arch_prctl", allowed, "amd64's own entries are kept")
        self.assertNotIn("s390_pci_mmio_read", allowed, "another architecture's are not")
        self.assertEqual(none["architectures"], ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        self.assertEqual((none["defaultAction"], none["defaultErrnoRet"]), ("SCMP_ACT_ERRNO", 38))
        spec, container = pod()
        self.assertNotIn("seccomp", translate.oci_config(spec, container, bare_node())["linux"], "Unconfined")
        spec["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
        self.assertEqual(translate.oci_config(spec, container, bare_node())["linux"]["seccomp"], {"x": 1})
        spec["securityContext"]["seccompProfile"] = {"type": "Localhost", "localhostProfile": "p.json"}
        with self.assertRaises(PodFailed):
            translate.oci_config(spec, container, bare_node())

    def test_a_pod_that_would_get_a_service_account_token_is_refused(self):
        spec, container = pod()
        del spec["automountServiceAccountToken"]
        with self.assertRaises(PodFailed) as e:
            translate.oci_config(spec, container, bare_node())
        self.assertIn("automountServiceAccountToken: false", e.exception.message)

    def test_host_namespaces_are_shared_only_where_the_pod_asks(self):
        spec, container = pod()
        spec.update(hostNetwork=True, hostPID=True)
        config = translate.oci_config(spec, container, bare_node())
        self.assertEqual({n["type"] for n in config["linux"]["namespaces"]}, {"mount", "cgroup", "ipc"})
        self.assertNotIn("hostname", config, "no UTS namespace of its own: no hostname to set")

    def test_the_command_line_follows_kubernetes_over_the_image(self):
        image = {"entrypoint": ["/e"], "cmd": ["--help"]}
        self.assertEqual(translate.command_line({}, image, {}), ["/e", "--help"])
        self.assertEqual(translate.command_line({"args": ["run", "$(MODE)"]}, image, {"MODE": "mps"}),
                         ["/e", "run", "mps"])
        self.assertEqual(translate.command_line({"command": ["/bin/sh"]}, image, {}), ["/bin/sh"],
                         "a command drops the image's CMD too")
        self.assertEqual(translate.expand("$$(X) $(Y)", {"Y": "y"}), "$(X) y")

    def test_the_environment_is_the_images_then_the_containers_then_cdis(self):
        env = translate.process_env({"A": "pod", "B": "b"}, ["A=image", "PATH=/bin"], "h", {"B": "cdi"})
        self.assertEqual(env, ["A=pod", "PATH=/bin", "HOSTNAME=h", "B=cdi"])

    def test_a_volume_mount_naming_no_volume_or_an_unknown_kind_is_refused(self):
        spec, container = pod()
        container["volumeMounts"] = [{"name": "missing", "mountPath": "/x"}]
        with self.assertRaises(PodFailed):
            translate.oci_config(spec, container, bare_node())
        spec["volumes"] = [{"name": "missing", "nfs": {"server": "s", "path": "/"}}]
        with self.assertRaises(PodFailed) as e:
            translate.oci_config(spec, container, bare_node())
        self.assertEqual(e.exception.reason, "Unsupported")

    def test_a_config_map_is_read_only_and_a_mount_inside_a_volume_lands_on_top(self):
        spec, container = pod()
        spec["volumes"] = [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "data", "emptyDir": {}}]
        container["volumeMounts"] = [{"name": "cfg", "mountPath": "/data/cfg"}, {"name": "data", "mountPath": "/data"}]
        config = translate.oci_config(spec, container, bare_node(volumes={"cfg": "/v/cfg", "data": "/v/data"}))
        targets = [m["destination"] for m in config["mounts"]]
        self.assertLess(targets.index("/data"), targets.index("/data/cfg"))
        self.assertIn("ro", next(m for m in config["mounts"] if m["destination"] == "/data/cfg")["options"])

    def test_the_kubelet_resolves_secrets_downward_fields_and_refuses_a_missing_secret(self):
        container = {"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": True}}},
                             {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                             {"name": "R", "value": "$(N)-x"}]}
        env = kubelet.pod_env(container, {}, 2, "pod-2", "uid")
        self.assertEqual(env, {"JOB_COMPLETION_INDEX": "2", "N": "pod-2", "R": "pod-2-x"})
        container["env"][0]["valueFrom"]["secretKeyRef"]["optional"] = False
        with self.assertRaises(PodFailed):
            kubelet.pod_env(container, {}, 0, "p", "uid")

    def test_the_hosts_file_names_the_pod_and_its_peers_under_the_service(self):
        text = kubelet.hosts_file("169.254.77.10", "sb-0", "sb", "default", {"sb-0": "169.254.77.10",
                                                                             "sb-1": "169.254.77.11"})
        self.assertIn("169.254.77.10\tsb-0.sb.default.svc.cluster.local\tsb-0", text)
        self.assertIn("169.254.77.11\tsb-1.sb\tsb-1.sb.default.svc.cluster.local", text)


if __name__ == "__main__":
    unittest.main()
