#!/usr/bin/env python3
"""Makes an unpacked image's OCI config.json (umoci unpack) what a Pod runs: a read-only root, the given
volumes bind-mounted, the image's entrypoint with these arguments, no terminal, and an open-files limit no higher
than the host's (an OCI runtime without CAP_SYS_RESOURCE may lower limits, not raise them).

    python3 bench/image/bundle.py BUNDLE/config.json '["/usr/local/bin/sharebench"]' '[["/host", "/in", "ro"]]' report /in
"""
import json, resource, sys

path, entrypoint, mounts, args = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
config = json.load(open(path))
process = config["process"]
if process["args"][: len(entrypoint)] != entrypoint:
    sys.exit(f"bundle.py: the image runs {process['args']}, not the Dockerfile's entrypoint {entrypoint}")
process["args"] = entrypoint + args
process["terminal"] = False
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": min(soft, 1024), "hard": min(hard, 1024)}]
config["root"]["readonly"] = True
for source, target, mode in mounts:
    config["mounts"].append({"destination": target, "type": "bind", "source": source, "options": ["rbind", mode]})
json.dump(config, open(path, "w"), indent=1)
