#!/usr/bin/env python3
"""An LLM serving tenant for sharebench: a decoder-only transformer with random weights (nothing downloaded), a KV
cache, and continuous batching as a serving engine does it: requests arrive (Poisson at SHAREBENCH_RATE, or a
closed loop of --concurrency requests in flight), each is prefilled on its own (its first token: TTFT), then
decoded with every other request in flight, one batched step per token. Each finished request is reported:

    request latency_ms=... ttft_ms=... tokens=<output tokens> prompt_tokens=<prompt tokens> start_ns=...

`start_ns` is the request's intended arrival in an open loop, so queueing counts. Lengths are drawn per request:
prompt tokens uniform in [--prompt-min, --prompt-max], output tokens uniform in [--output-min, --output-max]
(seeded by SHAREBENCH_SEED and the worker index). The default model (16 layers, d_model 2048, ~0.94 B parameters,
bf16, ~1.9 GB) loads in seconds and keeps an H200 busy at a few Pods.

    sharebench run --mode mps --duration 20s --exec -- python3 bench/tenants/llm.py
    sharebench compare --exec --modes timeslice,mps --workers 1,2,4,8 --repeat 3 --duration 20s -- python3 bench/tenants/llm.py
"""
import argparse, math, os, random, signal, sys, time
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--layers", type=int, default=16)
p.add_argument("--d-model", type=int, default=2048)
p.add_argument("--heads", type=int, default=16)
p.add_argument("--vocab", type=int, default=32000)
p.add_argument("--max-batch", type=int, default=16, help="requests decoded together at most")
p.add_argument("--prompt-min", type=int, default=128)
p.add_argument("--prompt-max", type=int, default=512)
p.add_argument("--output-min", type=int, default=32)
p.add_argument("--output-max", type=int, default=256)
p.add_argument("--concurrency", type=int, default=4, help="closed loop (no SHAREBENCH_RATE): requests in flight")
p.add_argument("--device", default="cuda", help="torch device (cpu only to try the tenant on a machine without a GPU)")
args = p.parse_args()

torch.manual_seed(0)
dev, dtype = args.device, torch.bfloat16


def synchronize():
    """Waits for the device, so a token's time is when it exists, not when its kernels were queued."""
    if dev.startswith("cuda"):
        torch.cuda.synchronize()

D, H, L = args.d_model, args.heads, args.layers
HD = D // H
MAX_LEN = args.prompt_max + args.output_max


def weight(*shape):
    return torch.randn(*shape, device=dev, dtype=dtype) / math.sqrt(shape[-1])


embed = weight(args.vocab, D)
layers = [dict(qkv=weight(3 * D, D), out=weight(D, D), up=weight(4 * D, D), down=weight(D, 4 * D)) for _ in range(L)]
head = weight(args.vocab, D)
# The KV cache: one slot a request in flight, each as long as the longest request.
k_cache = [torch.zeros(args.max_batch, H, MAX_LEN, HD, device=dev, dtype=dtype) for _ in range(L)]
v_cache = [torch.zeros(args.max_batch, H, MAX_LEN, HD, device=dev, dtype=dtype) for _ in range(L)]


def mlp(w, x):
    return F.linear(F.gelu(F.linear(x, w["up"])), w["down"])


@torch.inference_mode()
def prefill(slot, tokens):
    """Runs a prompt through the model into `slot` of the cache; returns its first output token."""
    x = embed[tokens].unsqueeze(0)  # [1, P, D]
    n = tokens.shape[0]
    for i, w in enumerate(layers):
        q, k, v = F.linear(F.layer_norm(x, (D,)), w["qkv"]).view(1, n, 3, H, HD).permute(2, 0, 3, 1, 4)
        k_cache[i][slot, :, :n], v_cache[i][slot, :, :n] = k[0], v[0]
        x = x + F.linear(F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(1, n, D), w["out"])
        x = x + mlp(w, F.layer_norm(x, (D,)))
    return F.linear(x[0, -1], head).argmax()


@torch.inference_mode()
def decode(slots, tokens, lengths):
    """One token for every request in flight, batched: `lengths` are their cached lengths before this token."""
    b = slots.shape[0]
    x = embed[tokens].unsqueeze(1)  # [B, 1, D]
    positions = torch.arange(MAX_LEN, device=dev)
    mask = (positions[None, :] <= lengths[:, None]).view(b, 1, 1, MAX_LEN)
    for i, w in enumerate(layers):
        q, k, v = F.linear(F.layer_norm(x, (D,)), w["qkv"]).view(b, 1, 3, H, HD).permute(2, 0, 3, 1, 4)
        k_cache[i][slots, :, lengths] = k[:, :, 0]
        v_cache[i][slots, :, lengths] = v[:, :, 0]
        attn = F.scaled_dot_product_attention(q, k_cache[i][slots], v_cache[i][slots], attn_mask=mask)
        x = x + F.linear(attn.transpose(1, 2).reshape(b, 1, D), w["out"])
        x = x + mlp(w, F.layer_norm(x, (D,)))
    return F.linear(x[:, 0], head).argmax(-1)


class Request:
    def __init__(self, start_ns, rng):
        self.start_ns = start_ns
        self.prompt = torch.randint(0, args.vocab, (rng.randint(args.prompt_min, args.prompt_max),), device=dev)
        self.output = rng.randint(args.output_min, args.output_max)
        self.generated, self.ttft_ns, self.slot, self.next_token = 0, None, None, None


# Load and warm up (never counted): one prefill and a few decode steps.
first = prefill(0, torch.randint(0, args.vocab, (args.prompt_max,), device=dev))
decode(torch.tensor([0], device=dev), first.view(1), torch.tensor([args.prompt_max], device=dev))
synchronize()

report = open(os.environ["SHAREBENCH_REPORT"], "w", buffering=1)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
print(f"# llm: {L} layers, d_model {D}, {sum(t.numel() for t in [embed, head]) + L * 12 * D * D:,} parameters", file=report)
print("ready", file=report)
start_file = os.environ["SHAREBENCH_START_FILE"]
while not os.path.exists(start_file) and not stop:
    time.sleep(0.001)
if stop:
    sys.exit(0)
window_start, window_end = map(int, open(start_file).read().split())
while time.time_ns() < window_start:
    time.sleep(0.0005)

seed = int(os.environ.get("SHAREBENCH_SEED", "1")) * 1000 + int(os.environ.get("SHAREBENCH_WORKER_INDEX", "0"))
rng = random.Random(seed)
rate = float(os.environ["SHAREBENCH_RATE"]) if os.environ.get("SHAREBENCH_RATE") else None
next_arrival = window_start
waiting, active, free = [], [], list(range(args.max_batch))


def arrivals(now):
    """Open loop: every arrival due by now joins the queue; closed loop: keep --concurrency requests in flight."""
    global next_arrival
    if rate is None:
        while len(waiting) + len(active) < args.concurrency:
            waiting.append(Request(time.time_ns(), rng))
        return
    while next_arrival <= now:
        waiting.append(Request(next_arrival, rng))
        next_arrival += int(rng.expovariate(rate) * 1e9)


def finish(r, now):
    latency = (now - r.start_ns) / 1e6
    ttft = (r.ttft_ns - r.start_ns) / 1e6
    print(f"request latency_ms={latency:.3f} ttft_ms={ttft:.3f} tokens={r.generated} "
          f"prompt_tokens={r.prompt.shape[0]} start_ns={r.start_ns}", file=report)


while not stop:
    arrivals(time.time_ns())
    # Admit: each new request is prefilled on its own; its first token is its TTFT.
    while waiting and free:
        r = waiting.pop(0)
        r.slot = free.pop()
        r.next_token = prefill(r.slot, r.prompt)
        synchronize()
        r.ttft_ns, r.generated, r.length = time.time_ns(), 1, r.prompt.shape[0]
        if r.generated >= r.output:
            finish(r, r.ttft_ns)
            free.append(r.slot)
        else:
            active.append(r)
    if not active:
        time.sleep(0.0002)
        continue
    # One batched decode step for everything in flight.
    slots = torch.tensor([r.slot for r in active], device=dev)
    tokens = torch.stack([r.next_token for r in active])
    lengths = torch.tensor([r.length for r in active], device=dev)
    out = decode(slots, tokens, lengths)
    synchronize()
    now = time.time_ns()
    still = []
    for i, r in enumerate(active):
        r.next_token, r.generated, r.length = out[i], r.generated + 1, r.length + 1
        if r.generated >= r.output:
            finish(r, now)
            free.append(r.slot)
        else:
            still.append(r)
    active = still
