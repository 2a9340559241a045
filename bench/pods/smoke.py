#!/usr/bin/env python3
"""A rendered Pod started by a real OCI runtime on a machine without a GPU (CI): the dra-timeslicing Job's first
Pod, its GPU claim taken away, translated by translate.py and run by runc/crun through node.py on the image's
root; its container reports what it got, and this checks each against what the Pod asked for: uid and gid
65532, no capabilities, no_new_privs, the RuntimeDefault seccomp filter, the read-only root with a writable
emptyDir at /tmp, the memory limit as its cgroup's, /proc/kcore masked, /proc/sys read-only, the Pod's hostname,
and `sharebench check`'s no-GPU answer from the image's binary (exit 1: no context could run). Run as root.

    python3 bench/pods/smoke.py IMAGE_ROOT.tar BINARY
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import node  # noqa: E402

PROBE = r"""grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status
echo "id: $(id -u):$(id -g)"
echo "hostname: $(hostname)"
cat /sys/fs/cgroup/memory.max 2>/dev/null | sed 's/^/memory: /' || true
cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null | sed 's/^/memory: /' || true
touch /root-write 2>/dev/null && echo "root: writable" || echo "root: read-only"
touch /tmp/w && echo "tmp: writable"
head -c 1 /proc/kcore 2>/dev/null | wc -c | sed 's/^/kcore bytes: /'
(echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo "proc/sys: writable" || echo "proc/sys: read-only"
/usr/local/bin/sharebench check --expect timeslice > /tmp/check.txt 2>&1; echo "check exit: $?"
tail -1 /tmp/check.txt
"""
EXPECTED = ["CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2",
            "id: 65532:65532", "hostname: sharebench-0", "memory: 1073741824", "root: read-only", "tmp: writable",
            "kcore bytes: 0", "proc/sys: read-only",
            # Time-slicing expected, no daemon, and no context could run (no GPU): not verified, exit 1.
            "check exit: 1", "verdict: no daemon: time-slicing"]


def main():
    root_tar, binary = sys.argv[1], sys.argv[2]
    objects = node.render_overlay(os.path.join(node.REPO, "manifests", "overlays", "dra-timeslicing"))
    job = next(o for o in objects if o["kind"] == "Job")
    job["spec"]["completions"] = 1
    spec = job["spec"]["template"]["spec"]
    spec.pop("resourceClaims")
    container = spec["containers"][0]
    container["resources"].pop("claims")
    container["command"], container["args"] = ["/bin/sh", "-c", PROBE], []
    state = tempfile.mkdtemp(prefix="sharebench-pod-")
    pods = node.JobPods(objects, binary, state, "/nonexistent", root_tar=root_tar)
    try:
        pod = pods.start(0)
        log_path = os.path.join(state, "log")
        with open(log_path, "w") as log:
            pods.launch({pod["name"]: log})
            code = pod["proc"].wait() if pod["proc"] else None
        output = open(log_path).read()
    finally:
        pods.close()
        shutil.rmtree(state, ignore_errors=True)
    print(output.strip())
    missing = [e for e in EXPECTED if e not in output.splitlines()]
    if code != 0 or missing:
        sys.exit("error: the Pod under %s (exit %s) did not get what it asked for: %s" % (
            os.path.basename(pods.runtime), code, "; ".join(missing) or "its probe failed"))
    print("ok: the Pod ran under %s as its spec says (%d checks)" % (os.path.basename(pods.runtime), len(EXPECTED)))


if __name__ == "__main__":
    main()
