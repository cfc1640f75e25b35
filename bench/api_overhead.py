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
import shutil
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


async def mixed(direct_url: str, api_url: str, body: bytes, headers: dict, concurrency: int,
                pairs_per_worker: int) -> dict:
    """`concurrency` workers, each alternating direct and API requests (order flipped per pair),
    so both paths see the same load at the same moments: a busy machine hits both alike."""
    conn = aiohttp.TCPConnector(limit=0, force_close=True)  # same client settings for both paths
    out = {"direct": [], "api": [], "paired": []}
    async with aiohttp.ClientSession(connector=conn) as session:
        async def worker(w: int) -> None:
            for i in range(pairs_per_worker):
                order = ("direct", "api") if (w + i) % 2 == 0 else ("api", "direct")
                got = {}
                for path in order:
                    got[path] = await one(session, direct_url if path == "direct" else api_url, body, headers)
                    out[path].append(got[path])
                out["paired"].append((got["api"][0] - got["direct"][0], got["api"][1] - got["direct"][1]))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        out["wall"] = time.perf_counter() - t0
    return out


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
    ap.add_argument("--requests", type=int, default=64, help="request pairs per concurrency level")
    ap.add_argument("--tokens", type=int, default=16)
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
              f"~{args.requests} interleaved direct/API pairs per level; cores: {os.cpu_count()}, "
              f"load average {os.getloadavg()[0]:.1f}")
        long_body = json.dumps({"model": "trigger", "messages": [{"role": "user", "content": "Go on."}],
                                "max_tokens": 400, "ignore_eos": True, "stream": True}).encode()
        per = asyncio.run(rss_per_stream(api_url, long_body, headers, psutil.Process(proc.pid), 32))
        print(f"API RSS per open stream (32 open): {per / 1024:.1f} KiB; "
              f"API RSS now {psutil.Process(proc.pid).memory_info().rss / 2**20:.1f} MiB")
        print(f"{'streams':>7} {'path':<7} {'p50 ms':>8} {'p99 ms':>8} {'ttft p50':>9} {'ttft p99':>9} {'tok/s':>8}")
        for level in [int(x) for x in args.levels.split(",")]:
            pairs = max(2, args.requests // level)
            asyncio.run(mixed(f"{llama.url}/v1/chat/completions", f"{api_url}/v1/chat/completions", body,
                              headers, level, 1))  # warm-up
            api_proc = psutil.Process(proc.pid)
            cpu0 = api_proc.cpu_times()
            res = asyncio.run(mixed(f"{llama.url}/v1/chat/completions", f"{api_url}/v1/chat/completions", body,
                                    headers, level, pairs))
            cpu1 = api_proc.cpu_times()
            cpu_ms = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) * 1e3 / len(res["api"])
            figures = {}
            for path in ("direct", "api"):
                lat = [r[0] for r in res[path]]
                ttft = [r[1] for r in res[path]]
                busy = sum(lat)  # time spent in requests of this path, summed over workers
                tps = sum(r[2] for r in res[path]) / busy * level
                figures[path] = (pct(lat, .5) * 1e3, pct(lat, .99) * 1e3, pct(ttft, .5) * 1e3, pct(ttft, .99) * 1e3,
                                 tps)
                f = figures[path]
                print(f"{level:>7} {path:<7} {f[0]:>8.1f} {f[1]:>8.1f} {f[2]:>9.1f} {f[3]:>9.1f} {f[4]:>8.1f}")
            d, a = figures["direct"], figures["api"]
            print(f"{level:>7} {'added':<7} {a[0] - d[0]:>+8.1f} {a[1] - d[1]:>+8.1f} {a[2] - d[2]:>+9.1f} "
                  f"{a[3] - d[3]:>+9.1f} {a[4] / d[4]:>7.3f}x")
            dl = [p[0] * 1e3 for p in res["paired"]]
            dt = [p[1] * 1e3 for p in res["paired"]]
            print(f"{level:>7} {'paired':<7} {statistics.median(dl):>+8.1f} {pct(dl, .99):>+8.1f} "
                  f"{statistics.median(dt):>+9.1f} {pct(dt, .99):>+9.1f}   (median/p99 of per-pair differences, "
                  f"{len(dl)} pairs)")
            print(f"{level:>7} {'api cpu':<7} {cpu_ms:>8.2f} ms of API process CPU per request "
                  f"({args.tokens} chunks relayed each): the cost that does not depend on machine load")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        llama.stop()
    shutil.rmtree(tmp, ignore_errors=True)  # kept (with the logs) only when the bench failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
