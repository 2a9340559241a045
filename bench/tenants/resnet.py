#!/usr/bin/env python3
"""A PyTorch inference tenant for `sharebench run --exec`: torchvision ResNet-50 with random weights (nothing is
downloaded), one batch per request, reporting each request's latency through the sharebench protocol.

    sharebench run --mode mps --duration 20s --exec -- python3 bench/tenants/resnet.py --batch 1
    sharebench compare --workers 1,2,4,8 --exec -- python3 bench/tenants/resnet.py --batch 1

Arrivals come from sharebench (SHAREBENCH_ARRIVALS, SHAREBENCH_RATE, SHAREBENCH_SEED): a closed loop (the next
request when the last is done) or an open loop (Poisson or fixed spacing at the rate, latency counted from each
request's intended start, so queueing counts). --rate/--closed override them when run by hand. Without
SHAREBENCH_REPORT the protocol lines go to stdout, so the script can be tried alone.
"""
import argparse
import os
import random
import signal
import sys
import time


def wait_for_window(path, stop):
    """The common window (start, end) in Unix ns, once sharebench writes it; sleeps until its start."""
    if not path:
        now = time.time_ns()
        return now, now + int(float(os.environ.get("SHAREBENCH_DURATION_S", "10")) * 1e9)
    while not os.path.exists(path):
        if stop["now"]:
            sys.exit(0)
        time.sleep(0.002)
    start, end = (int(v) for v in open(path).read().split())
    while time.time_ns() < start:
        # The start may pass between the test and the sleep: never a negative sleep (once a ValueError).
        time.sleep(max(0.0, min(0.001, (start - time.time_ns()) / 1e9)))
    return start, end


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=1, help="images per request")
    p.add_argument("--fp32", action="store_true", help="run in fp32 (default fp16)")
    p.add_argument("--warmup", type=int, default=30, help="unreported requests before `ready`")
    p.add_argument("--rate", type=float, help="open loop at this many requests/s (overrides SHAREBENCH_RATE)")
    p.add_argument("--closed", action="store_true", help="closed loop (overrides SHAREBENCH_ARRIVALS)")
    args = p.parse_args()

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    target = os.environ.get("SHAREBENCH_REPORT")
    report = open(target, "w", buffering=1) if target else sys.stdout

    import torch
    import torchvision

    dtype = torch.float32 if args.fp32 else torch.float16
    model = torchvision.models.resnet50(weights=None).to("cuda", dtype).eval()
    images = torch.randn(args.batch, 3, 224, 224, device="cuda", dtype=dtype)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(images)
        torch.cuda.synchronize()
    print("ready", file=report)

    arrivals = "closed" if args.closed else os.environ.get("SHAREBENCH_ARRIVALS", "closed")
    rate = args.rate or float(os.environ.get("SHAREBENCH_RATE", "0") or 0)
    if args.rate and not args.closed:
        arrivals = "poisson"
    rng = random.Random(int(os.environ.get("SHAREBENCH_SEED", "1")))
    start, end = wait_for_window(os.environ.get("SHAREBENCH_START_FILE"), stop)
    intended = start
    # Serve until sharebench stops us (SIGTERM), so the window's end finds the context still there.
    with torch.inference_mode():
        while not stop["now"] and time.time_ns() < end + 60_000_000_000:
            if arrivals == "closed" or rate <= 0:
                begin = time.time_ns()
            else:
                gap = rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
                intended += int(gap * 1e9)
                while time.time_ns() < intended and not stop["now"]:
                    time.sleep(min(0.0005, max(0.0, (intended - time.time_ns()) / 1e9)))
                if stop["now"]:  # stopped before this request's arrival: it never happened
                    break
                begin = intended
            model(images)
            torch.cuda.synchronize()
            done = time.time_ns()
            print(f"request latency_ms={(done - begin) / 1e6:.4f} start_ns={begin} items={args.batch}", file=report)


if __name__ == "__main__":
    main()
