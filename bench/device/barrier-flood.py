#!/usr/bin/env python3
"""Floods a start barrier with what a hostile or confused neighbour could send, for a bounded time and count,
on loopback only: over-long lines without a newline, connections that never speak, stale READY lines of another
run (index 0, so a naive server would take the real worker 0's place), READY lines with a wrong worker count,
and garbage. Prints what it sent and what the server answered.
Usage: barrier-flood.py HOST:PORT SECONDS RUN_ID (the real run's id: the wrong-count READY lines carry it)
"""
import collections
import socket
import sys
import threading
import time

addr, seconds, run_id = sys.argv[1], float(sys.argv[2]), sys.argv[3]
host, port = addr.rsplit(":", 1)
assert host in ("127.0.0.1", "localhost"), "loopback only"
end = time.time() + seconds
answers = collections.Counter()
sent = collections.Counter()
lock = threading.Lock()
MAX_CONNECTIONS = 20000  # bounded, whatever the duration


def attempt(kind, payload, hold=0.0):
    with lock:
        if sum(sent.values()) >= MAX_CONNECTIONS:
            return False
        sent[kind] += 1
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        if payload:
            s.sendall(payload)
        time.sleep(hold)
        s.settimeout(2)
        answer = s.recv(200).decode(errors="replace").split("\n")[0][:90]
    except OSError as e:
        answer = "(%s)" % type(e).__name__
    finally:
        try:
            s.close()
        except Exception:
            pass
    with lock:
        answers[(kind, answer)] += 1
    return True


def loop(kind, payload, hold=0.0):
    while time.time() < end and attempt(kind, payload, hold):
        pass


kinds = [
    ("long line (1 MiB, no newline)", b"x" * (1 << 20), 0.0),
    ("silent connection (held 3 s)", b"", 3.0),
    ("stale READY of another run", b"READY 0 sharebench-0 workers=4 run=yesterday\n", 0.0),
    ("READY with a wrong worker count", ("READY 1 sharebench-1 workers=8 run=%s\n" % run_id).encode(), 0.0),
    ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0.0),
]
threads = [threading.Thread(target=loop, args=k) for k in kinds for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("flood: %d connections in %.0f s" % (sum(sent.values()), seconds))
for (kind, answer), n in sorted(answers.items()):
    print("  %-34s %6d x %s" % (kind, n, answer))
