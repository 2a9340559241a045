"""Whether two of the machine's CPUs share one physical core (SMT siblings a VM's topology may hide): for every
pair, a busy loop on each CPU at once against the same loop alone. A ratio near 1 is two cores; near 0.5-0.65,
two hardware threads of one core. Prints the pairs below 0.85 and each CPU's slowest partner.
Usage: python3 bench/device/cpu-pairs.py [SECONDS_PER_TEST]"""
import multiprocessing as mp
import os
import sys
import time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1


def spin(cpu, start, out):
    os.sched_setaffinity(0, {cpu})
    while time.time() < start:
        pass
    n, end = 0, start + SECONDS
    while time.time() < end:
        n += 1
    out.put((cpu, n))


def run(cpus):
    out, start = mp.Queue(), time.time() + 0.05
    procs = [mp.Process(target=spin, args=(c, start, out)) for c in cpus]
    [p.start() for p in procs]
    got = dict(out.get() for _ in procs)
    [p.join() for p in procs]
    return got


if __name__ == "__main__":
    cpus = sorted(os.sched_getaffinity(0))
    alone = {c: run([c])[c] for c in cpus}
    slowest = {}
    for i, a in enumerate(cpus):
        for b in cpus[i + 1:]:
            both = run([a, b])
            ratio = min(both[a] / alone[a], both[b] / alone[b])
            for c, other in ((a, b), (b, a)):
                if c not in slowest or ratio < slowest[c][1]:
                    slowest[c] = (other, ratio)
            if ratio < 0.85:
                print(f"cpus {a} and {b}: {ratio:.2f} of alone each (one physical core?)")
    print("each CPU's slowest partner:", " ".join(f"{c}:{o}({r:.2f})" for c, (o, r) in sorted(slowest.items())))
