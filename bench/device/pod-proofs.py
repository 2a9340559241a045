#!/usr/bin/env python3
"""One line per worker result in a Pods' log (`kubectl logs` form): what the worker saw of itself (pid, PID
namespace, uid) and how its sharing mode was proven, for the bench/device pod scripts' transcripts.

    python3 bench/device/pod-proofs.py LOG
"""
import json
import sys

for line in open(sys.argv[1]):
    line = line.strip()
    line = line[line.find("{"):] if "{" in line else line
    if not line.startswith("{") or '"format"' not in line:
        continue
    r = json.loads(line)
    check = r["sharing"].get("check") or {}
    env = check.get("observations", {}).get("environment", {})
    m = (check.get("observations") or {}).get("membership") or {}
    row = (m.get("decision") or {}).get("row") or {}
    print("  worker %d: pid %s in PID ns %s, uid %s, %s, proof %s, daemon's pid for it %s, %d kernels" % (
        r["config"]["worker_index"], env.get("pid"), env.get("pid_namespace"), env.get("uid"), r["sharing"]["verdict"],
        r["sharing"].get("proof"), row.get("pid"), sum(lane["kernels"] for lane in r["lanes"])))
