#!/usr/bin/env python3
"""Runs the Kubernetes pod code path for real, without Kubernetes: N `sharebench run` processes started exactly as
the Indexed Job in a rendered manifest starts them (the container's args and env, with the variables the Job
controller and the Downward API set: JOB_COMPLETION_INDEX, POD_NAME, the labels of the pod template), `$(VAR)` references
expanded as the kubelet expands them, and the barrier reached by its Service name (which the caller maps to
127.0.0.1 in /etc/hosts). Their stdout and stderr are concatenated, as `kubectl logs` would print them.

Usage: podsim.py RENDERED.json BINARY LOGFILE [--kill INDEX SECONDS] [--absent INDEX] [--barrier-timeout T]
  (RENDERED.json: `kubectl kustomize OVERLAY` as a JSON list)
  --kill INDEX SECONDS   SIGKILL that pod's worker SECONDS after the start (a Pod evicted or OOM-killed mid-run)
  --absent INDEX         never start that pod (a Pod that is never scheduled)
  --barrier-timeout T    replace the Job's --barrier-timeout value (to keep the absent-pod case short)
Exit code: 0 when every worker succeeded.
"""
import json
import os
import re
import subprocess
import sys
import uuid


def expand(text, env):
    """Kubelet's $(VAR) expansion: known variables are replaced, $$ escapes, unknown references stay."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def pod_env(container, labels_of_template, index, pod_name, controller_uid):
    env = {"JOB_COMPLETION_INDEX": str(index)}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = expand(var["value"], env)
            continue
        path = var["valueFrom"]["fieldRef"]["fieldPath"]
        labels = dict(labels_of_template)
        labels["batch.kubernetes.io/controller-uid"] = controller_uid
        fields = {"metadata.name": pod_name}
        fields.update({"metadata.labels['%s']" % k: v for k, v in labels.items()})
        env[var["name"]] = fields[path]
    return env


def options(argv):
    kill, absent, timeout = None, None, None
    i = 0
    while i < len(argv):
        if argv[i] == "--kill":
            kill = (int(argv[i + 1]), float(argv[i + 2]))
            i += 3
        elif argv[i] == "--absent":
            absent = int(argv[i + 1])
            i += 2
        elif argv[i] == "--barrier-timeout":
            timeout = argv[i + 1]
            i += 2
        else:
            sys.exit("unknown option " + argv[i])
    return kill, absent, timeout


def main():
    docs, binary, log_path = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
    kill, absent, barrier_timeout = options(sys.argv[4:])
    job = next(d for d in docs if d["kind"] == "Job")
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    controller_uid = str(uuid.uuid4())
    procs = []
    for index in range(spec["completions"]):
        if index == absent:
            print("pod %d: never started" % index, file=sys.stderr)
            continue
        pod_name = "%s-%d-%s" % (job["metadata"]["name"], index, uuid.uuid4().hex[:5])
        env = pod_env(container, spec["template"]["metadata"].get("labels", {}), index, pod_name, controller_uid)
        args = [expand(a, env) for a in container["args"]]
        if barrier_timeout and "--barrier-timeout" in args:
            args[args.index("--barrier-timeout") + 1] = barrier_timeout
        full_env = dict(os.environ)
        full_env.update(env)
        print("pod %s: sharebench %s" % (pod_name, " ".join(args)), file=sys.stderr)
        procs.append(subprocess.Popen([binary] + args, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    if kill is not None:
        import signal
        import time
        time.sleep(kill[1])
        target = procs[kill[0] - (1 if absent is not None and absent < kill[0] else 0)]
        target.send_signal(signal.SIGKILL)
        print("killed pod %d's worker (SIGKILL)" % kill[0], file=sys.stderr)
    codes = []
    with open(log_path, "w") as log:
        for p in procs:
            out, _ = p.communicate()
            log.write(out)
            codes.append(p.returncode)
    print("worker exit codes:", codes, file=sys.stderr)
    sys.exit(0 if all(c == 0 for c in codes) else 1)


if __name__ == "__main__":
    main()
