#!/usr/bin/env python3
"""A tenant that needs memory: once the window opens it takes device memory in 1 GiB pieces (up to --gib, or
until the driver refuses: --gib 0 takes all it can get), holds it, and keeps serving small requests. It is the
command-side twin of `run --hold-memory`: run it as the neighbour, or as a victim that must grow, and see which
limit stops it (the MPS pinned memory limit, or the GPU's free memory). What it got goes to stderr (the Pod's
log) and into a protocol comment.

    sharebench run --mode mps --exec -- python3 bench/tenants/greedy_memory.py --gib 20
"""
import argparse, os, sys, time
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--gib", type=float, default=0, help="GiB to take; 0: all it can get")
parser.add_argument("--device", default="cuda", help="torch device (cpu only to try the tenant without a GPU)")
args = parser.parse_args()

report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)
x = torch.rand(1024, 1024, device=args.device)


def serve_one():
    (x @ x).sum().item()


for _ in range(10):
    serve_one()
print("ready", file=report)
start_file = os.environ["SHAREBENCH_START_FILE"]
while not os.path.exists(start_file):
    time.sleep(0.001)
start, end = map(int, open(start_file).read().split())
while time.time_ns() < start:
    time.sleep(0.0005)

# Room for serving once everything else is taken: on out-of-memory torch's allocator gives its cached blocks back
# to the driver, so the requests' 4 MiB buffers would be gone; this block, freed after the hold, stays cached.
reserve = torch.empty(64 << 20, dtype=torch.uint8, device=args.device)
held, piece, stopped = [], 1 << 30, None
target = args.gib * (1 << 30) if args.gib > 0 else float("inf")
while sum(t.numel() for t in held) < target:
    size = int(min(piece, target - sum(t.numel() for t in held)))
    try:
        held.append(torch.ones(size, dtype=torch.uint8, device=args.device))
    except (torch.cuda.OutOfMemoryError, RuntimeError) as e:  # the pinned limit and the GPU alike
        stopped = str(e).splitlines()[0]
        if piece <= 16 << 20:
            break
        piece //= 2
del reserve
got = sum(t.numel() for t in held) / (1 << 30)
line = f"held {got:.1f} GiB (asked {args.gib or 'all'})"
if args.device.startswith("cuda"):
    free, total = torch.cuda.mem_get_info()
    line += f"; free after {free / (1 << 30):.1f} of {total / (1 << 30):.1f} GiB"
if stopped and got < target:
    line += f"; stopped by: {stopped}"
print(f"greedy_memory: {line}", file=sys.stderr)
print(f"# {line}", file=report)

while True:  # until sharebench sends SIGTERM after the window
    begin = time.time_ns()
    serve_one()
    print(f"request latency_ms={(time.time_ns() - begin) / 1e6} start_ns={begin}", file=report)
