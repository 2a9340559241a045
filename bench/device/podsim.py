#!/usr/bin/env python3
"""Runs the Kubernetes pod code path for real, without Kubernetes: the Pods of a rendered Indexed Job, each
started by crun from the OCI spec it translates to (bench/pods/node.py: own PID namespace and /proc, IPC, UTS,
mount and network namespaces, only the declared volumes, the securityContext's uid, capabilities and seccomp
profile, cgroup limits, the CDI edits of its GPU claim), reaching the barrier Pod to Pod through the Service
name. Their outputs are concatenated, as `kubectl logs` would print them. Run as root.

Usage: podsim.py RENDERED.json BINARY LOGFILE [--kill INDEX SECONDS] [--absent INDEX] [--barrier-timeout T]
  (RENDERED.json: `kubectl kustomize OVERLAY` as a JSON list)
  --kill INDEX SECONDS   SIGKILL that Pod's container SECONDS after the start (evicted or OOM-killed mid-run)
  --absent INDEX         never start that Pod (a Pod that is never scheduled)
  --barrier-timeout T    replace the Job's --barrier-timeout value (to keep the absent-pod case short)
Environment: SIM_MPS_PIPE_DIRECTORY, the pipe directory of the MPS daemon an MPS claim gets (as NVIDIA's DRA
driver starts one per claim); SIM_IMAGE_ROOT, the image's root as a tar (bench/image/image-root.sh; unset: the
node's own root stands in for "your image"); SB_RUNTIME, SB_RUNTIME_LIBS, the OCI runtime and the libraries
carried with it; SIM_KEEP_SPECS, a directory to keep the Pods' config.json in; PYTHONPATH must reach pyroute2.
Exit code: 0 when every worker succeeded.
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pods"))
from node import JobPods  # noqa: E402


def options(argv):
    kill, absent, overrides = None, None, {}
    i = 0
    while i < len(argv):
        if argv[i] == "--kill":
            kill = (int(argv[i + 1]), float(argv[i + 2]))
            i += 3
        elif argv[i] == "--absent":
            absent = int(argv[i + 1])
            i += 2
        elif argv[i] == "--barrier-timeout":
            overrides["--barrier-timeout"] = argv[i + 1]
            i += 2
        else:
            sys.exit("unknown option " + argv[i])
    return kill, absent, overrides


def main():
    docs, binary, log_path = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
    kill, absent, overrides = options(sys.argv[4:])
    state = "/tmp/podsim-%d" % os.getpid()
    job = JobPods(docs, binary, state, os.environ.get("SIM_MPS_PIPE_DIRECTORY", "/nonexistent"), overrides)
    try:
        for index in range(job.job["spec"]["completions"]):
            if index == absent:
                print("pod %d: never started" % index, file=sys.stderr)
                continue
            job.start(index)
        logs = {p["name"]: open(os.path.join(p["pod_dir"], "log"), "w") for p in job.pods}
        job.launch(logs)
        if kill is not None:
            time.sleep(kill[1])
            target = next(p for p in job.pods if p["index"] == kill[0])
            job.signal(target, "KILL")
            print("killed pod %d's container (SIGKILL)" % kill[0], file=sys.stderr)
        codes = [p["proc"].wait() if p["proc"] else 1 for p in job.pods]
        with open(log_path, "w") as log:
            for p in job.pods:
                logs[p["name"]].close()
                with open(os.path.join(p["pod_dir"], "log")) as f:
                    log.write(f.read())
        print("worker exit codes:", codes, file=sys.stderr)
        sys.exit(0 if all(c == 0 for c in codes) else 1)
    finally:
        for p in job.pods if os.environ.get("SIM_KEEP_SPECS") else []:  # the OCI specs the Pods ran from
            spec = os.path.join(p["pod_dir"], "bundle", "config.json")
            if os.path.exists(spec):
                os.makedirs(os.environ["SIM_KEEP_SPECS"], exist_ok=True)
                shutil.copy(spec, os.path.join(os.environ["SIM_KEEP_SPECS"], p["name"] + ".json"))
        job.close()
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
