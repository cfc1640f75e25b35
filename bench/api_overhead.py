"""What the API costs on top of llama-server: identical streamed requests, direct vs through `ai-sysadmin api`.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python bench/api_overhead.py [--rounds 3] [--tokens 32]

Starts a real llama-server (tiny model, 32 slots) and the real API process (one key),
then at 1, 8 and 32 concurrent streams sends the same request (temperature 0, fixed
seed, ignore_eos, so every answer has exactly --tokens tokens) alternately to the
server directly and through the API, in interleaved rounds so load drift hits both.
Prints p50/p99 latency and time-to-first-token for each path and the difference, the
throughput ratio (tokens/s through the API / direct), and the API's RSS per open stream.
Targets on a 2-core machine: <= +2 ms p50, <= +10 ms p99, TTFT <= +5 ms, throughput >= 0.95x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rig.llama import tiny_server  # noqa: E402
from rig.net import free_port, wait_until  # noqa: E402
from rig.proc import exit_report, spawn_logged  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    ttft = None
    tokens = 0
    async with session.post(url, data=body, headers=headers) as r:
        assert r.status == 200, await r.text()
        buf = b""
        async for chunk in r.content.iter_any():
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if event.startswith(b"data: {") and b'"content":"' in event:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    tokens += 1
    return time.perf_counter() - t0, ttft or 0.0, tokens


async def batch(url: str, body: bytes, headers: dict, concurrency: int, requests: int) -> dict:
    # Same client settings for both paths: a new connection per request (llama-server closes
    # the connection after every streamed answer anyway, while announcing keep-alive).
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as session:
        sem = asyncio.Semaphore(concurrency)

        async def run() -> tuple[float, float, int]:
            async with sem:
                return await one(session, url, body, headers)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(run() for _ in range(requests)))
        wall = time.perf_counter() - t0
    return {"lat": [r[0] for r in results], "ttft": [r[1] for r in results], "tokens": sum(r[2] for r in results),
            "wall": wall}


async def rss_per_stream(api_url: str, body_long: bytes, headers: dict, proc: psutil.Process, n: int) -> float:
    conn = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=conn) as session:
        base = proc.memory_info().rss
        responses = []
        for _ in range(n):
            r = await session.post(f"{api_url}/v1/chat/completions", data=body_long, headers=headers)
            assert r.status == 200
            await r.content.readany()
            responses.append(r)
        await asyncio.sleep(0.5)  # let the relays settle; measured once, not a synchronisation
        opened = proc.memory_info().rss
        for r in responses:
            r.close()
    return (opened - base) / n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--levels", default="1,8,32")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    llama = tiny_server("trigger", tmp, ctx_size=32 * 512, parallel=32, threads=1,
                        extra_args=["--threads-http", "80"])
    llama.start()
    key = secrets.token_hex(16)
    (tmp / "keys").write_text(f"bench:{key}\n")
    port = free_port()
    cfg = {"state_dir": str(tmp / "state"),
           "roles": {"trigger": {"url": llama.url, "model": "trigger"}, "review": {"enable": False},
                     "meta": {"enable": False}},
           # No database for this bench: the pool retries in the background, the relay never touches it.
           "database": {"host": "127.0.0.1", "port": free_port()},
           "api": {"port": port, "api_key_file": str(tmp / "keys"), "max_concurrent_per_key": 64}}
    (tmp / "config.json").write_text(json.dumps(cfg))
    log = tmp / "api.log"
    proc = spawn_logged([sys.executable, "-m", "ai_sysadmin", "--config", str(tmp / "config.json"), "api"], log,
                        cwd=str(REPO))
    api_url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=1):
                return True
        except Exception:
            return False

    try:
        wait_until(up, 60, "api", alive=lambda: exit_report(proc, log))
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        body = json.dumps({"model": "trigger", "messages": [{"role": "user", "content": "Count slowly."}],
                           "max_tokens": args.tokens, "temperature": 0, "seed": 7, "ignore_eos": True,
                           "stream": True}).encode()
        print(f"llama-server {llama.url} (32 slots, 1 thread), API {api_url}; {args.tokens} tokens per answer, "
              f"{args.rounds} interleaved rounds per level; cores: {os.cpu_count()}")
        print(f"{'streams':>7} {'path':<7} {'p50 ms':>8} {'p99 ms':>8} {'ttft p50':>9} {'ttft p99':>9} {'tok/s':>8}")
        for level in [int(x) for x in args.levels.split(",")]:
            requests = max(24, level * 4)
            acc = {"direct": {"lat": [], "ttft": [], "tokens": 0, "wall": 0.0},
                   "api": {"lat": [], "ttft": [], "tokens": 0, "wall": 0.0}}
            asyncio.run(batch(f"{llama.url}/v1/chat/completions", body, headers, level, level))  # warm-up
            for rnd in range(args.rounds):
                order = ("direct", "api") if rnd % 2 == 0 else ("api", "direct")
                for path in order:
                    url = (llama.url if path == "direct" else api_url) + "/v1/chat/completions"
                    res = asyncio.run(batch(url, body, headers, level, requests))
                    for k in ("lat", "ttft"):
                        acc[path][k] += res[k]
                    acc[path]["tokens"] += res["tokens"]
                    acc[path]["wall"] += res["wall"]
            figures = {}
            for path in ("direct", "api"):
                a = acc[path]
                figures[path] = (pct(a["lat"], .5) * 1e3, pct(a["lat"], .99) * 1e3, pct(a["ttft"], .5) * 1e3,
                                 pct(a["ttft"], .99) * 1e3, a["tokens"] / a["wall"])
                f = figures[path]
                print(f"{level:>7} {path:<7} {f[0]:>8.1f} {f[1]:>8.1f} {f[2]:>9.1f} {f[3]:>9.1f} {f[4]:>8.1f}")
            d, a = figures["direct"], figures["api"]
            print(f"{level:>7} {'added':<7} {a[0] - d[0]:>+8.1f} {a[1] - d[1]:>+8.1f} {a[2] - d[2]:>+9.1f} "
                  f"{a[3] - d[3]:>+9.1f} {a[4] / d[4]:>7.3f}x")
        long_body = json.dumps({"model": "trigger", "messages": [{"role": "user", "content": "Go on."}],
                                "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
        per = asyncio.run(rss_per_stream(api_url, long_body, headers, psutil.Process(proc.pid), 32))
        print(f"API RSS per open stream (32 open): {per / 1024:.1f} KiB; "
              f"API RSS now {psutil.Process(proc.pid).memory_info().rss / 2**20:.1f} MiB")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        llama.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
