#!/usr/bin/env python3
"""A kubectl for the GPU machine, which has no cluster: enough of kubectl and of a one-node cluster for
`sharebench plan --kubernetes` to run its points there for real. Rendering is the real kubectl's (`kubectl
kustomize`, offline); what a cluster would do is done with local processes, as podsim.py does for one Job:

  apply -k DIR        render DIR, then start the Job's Pods in the background, one container per completion
                      index, each started by crun from the OCI spec its Pod translates to (bench/pods: own
                      PID/IPC/UTS/mount/network namespaces, only its declared volumes, ConfigMaps at their mount
                      paths, its uid, cgroup limits, seccomp, capabilities): an MPS claim gets
                      the MPS daemon's pipe directory at /tmp/nvidia-mps as NVIDIA's DRA driver injects it, a
                      time-slicing claim only the GPU; a Pod that cannot start stays Pending with the reason
  get job NAME -o json | -o name --ignore-not-found     the Job's status, as the Job controller keeps it
                      (backoffLimit 0: one failed Pod fails the Job and stops the others; activeDeadlineSeconds)
  get pods -l ... -o json                               the Pods' phases
  logs -l ... --prefix                                  every Pod's output, prefixed [pod/NAME/worker]
  delete -k DIR ...                                     delete the Pods (SIGTERM, then SIGKILL), forget the Job

Environment: SIM_KUBECTL (the real kubectl), SIM_SHAREBENCH (the binary the image would run), SIM_MPS_PIPE_DIRECTORY
(the MPS daemon a claim with strategy MPS gets), SIM_STATE (state directory, default /tmp/kubectl-sim).
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pods"))
from node import JobPods, render_overlay, unmount_under  # noqa: E402

STATE = os.environ.get("SIM_STATE", "/tmp/kubectl-sim")


def path(*parts):
    return os.path.join(STATE, *parts)


def write_json(name, value):
    tmp = path(name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path(name))


def read_json(name):
    with open(path(name)) as f:
        return json.load(f)


def run_job():
    """The background 'cluster': runs the Job's Pods (bench/pods/node.py: each started by crun from its OCI
    spec) and keeps status.json. SIGTERM (`delete`) deletes the Pods as the kubelet does."""
    objects = read_json("objects.json")
    job = JobPods(objects, os.environ["SIM_SHAREBENCH"], path("run"), os.environ["SIM_MPS_PIPE_DIRECTORY"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        spec = job.job["spec"]
        for index in range(spec["completions"]):
            job.start(index)
        job.launch({p["name"]: open(path("pods", p["name"] + ".log"), "w") for p in job.pods})
        follow(job, spec)
    finally:
        job.close()


def follow(job, spec):
    pods = [dict(p, phase="Running" if p["proc"] else "Pending") for p in job.pods]
    deadline = time.time() + spec.get("activeDeadlineSeconds", 1e9)
    condition = None
    while condition is None:
        for p in pods:
            code = p["proc"].poll() if p["proc"] else None
            if p["phase"] == "Running" and code is not None:
                p["phase"] = "Succeeded" if code == 0 else "Failed"
        failed = [p for p in pods if p["phase"] == "Failed"]
        if failed and spec.get("backoffLimit", 6) == 0:
            condition = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif time.time() > deadline:
            condition = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        elif all(p["phase"] == "Succeeded" for p in pods):
            condition = ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        if condition and condition[0] == "Failed":
            for p in pods:
                if p["phase"] == "Running":
                    job.delete(next(q for q in job.pods if q["name"] == p["name"]))
                    p["phase"] = "Failed"
        status = {phase: sum(1 for p in pods if p["phase"] == phase) for phase in ("Running", "Succeeded", "Failed")}
        write_json("status.json", {
            "active": status["Running"], "succeeded": status["Succeeded"], "failed": status["Failed"],
            "pods": [{"name": p["name"], "phase": p["phase"], "waiting": p.get("waiting")} for p in pods],
            "conditions": [] if condition is None else [
                {"type": condition[0], "status": "True", "reason": condition[1], "message": condition[2]}],
        })
        time.sleep(0.2)


def stop_group(pgid):
    """Stops the 'cluster' process and its Pods (one process group) and waits until they are gone."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        end = time.time() + wait
        while time.time() < end:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def main(argv):
    while "--namespace" in argv:
        i = argv.index("--namespace")
        del argv[i:i + 2]
    words = [a for a in argv if not a.startswith("-")]
    if argv[:2] == ["apply", "-k"]:
        if os.path.exists(path("objects.json")):
            sys.exit('Error from server (AlreadyExists): jobs.batch "sharebench" already exists')
        objects = render_overlay(argv[2], os.environ["SIM_KUBECTL"])
        os.makedirs(path("pods"), exist_ok=True)
        write_json("objects.json", objects)
        write_json("status.json", {"active": 0, "succeeded": 0, "failed": 0, "pods": [], "conditions": []})
        runner = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_run"], start_new_session=True,
                                  stdout=open(path("cluster.log"), "w"), stderr=subprocess.STDOUT)
        write_json("runner.json", {"pgid": runner.pid})
        for o in objects:
            print("%s/%s created" % (o["kind"].lower(), o["metadata"]["name"]))
    elif argv[0] == "_run":
        run_job()
    elif words[:2] == ["get", "job"]:
        exists = os.path.exists(path("objects.json"))
        if "--ignore-not-found" in argv:
            print("job.batch/sharebench" if exists else "")
        elif not exists:
            sys.exit('Error from server (NotFound): jobs.batch "sharebench" not found')
        else:
            job = next(o for o in read_json("objects.json") if o["kind"] == "Job")
            job["status"] = {k: v for k, v in read_json("status.json").items() if k != "pods" and v}
            print(json.dumps(job))
    elif words[:2] == ["get", "pods"]:
        pods = read_json("status.json")["pods"] if os.path.exists(path("status.json")) else []
        print(json.dumps({"items": [{"metadata": {"name": p["name"]}, "status": dict(
            {"phase": p["phase"]}, **({"containerStatuses": [{"state": {"waiting": p["waiting"]}}]} if p.get("waiting")
                                      else {}))} for p in pods]}))
    elif argv[0] == "logs":
        for p in (read_json("status.json")["pods"] if os.path.exists(path("status.json")) else []):
            if not os.path.exists(path("pods", p["name"] + ".log")):
                continue  # a Pod that never started has no log
            with open(path("pods", p["name"] + ".log")) as f:
                for line in f:
                    sys.stdout.write("[pod/%s/worker] %s" % (p["name"], line))
    elif argv[:2] == ["delete", "-k"]:
        if os.path.exists(path("runner.json")):
            stop_group(read_json("runner.json")["pgid"])
        unmount_under(STATE)  # a runner that did not get to unmount must not take a volume's files with it
        subprocess.run(["rm", "-rf", "--one-file-system", STATE])
    else:
        sys.exit("kubectl-sim: unsupported: %s" % " ".join(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
