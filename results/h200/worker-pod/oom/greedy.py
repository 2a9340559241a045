import os, time
report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)
print("ready", file=report)
start_file = os.environ["SHAREBENCH_START_FILE"]
while not os.path.exists(start_file):
    time.sleep(0.01)
held = []
while True:  # a request per 256 MiB taken and touched, until the OOM killer ends it
    begin = time.time_ns()
    held.append(bytearray(256 << 20))
    print(f"request latency_ms={(time.time_ns() - begin) / 1e6:.3f} start_ns={begin}", file=report)
    time.sleep(0.2)
