"""Each Pod's requests/s in each repeat of a shared-window observer run (`compare --observer-effect`), supervised
(s) or alone (a), so a window's slow Pods, and which side they were on, can be seen. A Pod is called slow below
0.8 of its window's median Pod. Usage: python3 observer-pods.py RUN_DIR"""
import glob
import gzip
import json
import os
import re
import statistics
import sys


def results(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


run = sys.argv[1]
windows = {}
for side in ("results", "alone"):
    for path in glob.glob(os.path.join(run, side, "*.json*")):
        for r in results(path):
            if r.get("format") != "sharebench-result" or not r.get("tenant"):
                continue
            rate = r["tenant"]["requests_in_window"] / r["config"]["duration_s"]
            windows.setdefault(r["config"]["repeat"], []).append((r["config"]["worker_index"], side[0], rate))
slow = {"r": 0, "a": 0}
for repeat, pods in sorted(windows.items()):
    median = statistics.median(rate for _, _, rate in pods)
    marks = []
    for index, side, rate in sorted(pods):
        is_slow = rate < 0.8 * median
        slow[side] += is_slow
        marks.append(f"{index}{'s' if side == 'r' else 'a'}:{rate:.0f}{'*' if is_slow else ''}")
    total = sum(rate for _, _, rate in pods)
    print(f"repeat {repeat + 1}: {' '.join(marks)}  total {total:.0f}")
print(f"slow Pods (*): {slow['r']} supervised, {slow['a']} alone")
