#!/usr/bin/env python3
"""The smallest sharebench tenant: copy it and replace `serve_one` with your model's request.

    sharebench run --mode mps --exec -- python3 bench/tenants/minimal.py
"""
import os, time
import cupy  # any CUDA library: torch, jax, your own server...

report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)  # one line per write
a = cupy.random.rand(2048, 2048, dtype=cupy.float32)

def serve_one():
    (a @ a).sum().get()  # one request, waited for

for _ in range(10):  # load and warm up: never counted
    serve_one()
print("ready", file=report)

start_file = os.environ["SHAREBENCH_START_FILE"]  # appears when every tenant of the run is ready
while not os.path.exists(start_file):
    time.sleep(0.001)
start, end = map(int, open(start_file).read().split())
while time.time_ns() < start:
    time.sleep(0.0005)
while True:  # until sharebench sends SIGTERM after the window
    begin = time.time_ns()
    serve_one()
    print(f"request latency_ms={(time.time_ns() - begin) / 1e6} start_ns={begin}", file=report)
