"""What the API costs on top of llama-server: identical streamed requests, direct vs through `ai-sysadmin api`.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.api_overhead [--requests 128] [--levels 1,8,32]
    ... --spread 0 --think 0 --client-close     # the lockstep worst case (see below)

Starts a real llama-server (tiny model, 32 slots, one compute thread) and the real API
process (one key).  At 1, 8 and 32 concurrent streams it sends request *pairs*: the same
body (temperature 0, fixed seed, ignore_eos, so both answers have the same number of
tokens) once directly and once through the API.  At one stream the two run back to
back; at several, the two of a pair are sent at the same moment so that both join the
same decode step of llama-server's batch (see `mixed`).  Answer lengths vary from pair to
pair (--tokens +- --spread) and arrivals are paced at random (--think), as independent
clients are; the client keeps its connection to the API alive, as the openai SDK does.

Prints, per level: p50/p99 latency and time-to-first-token for each path; the added
latency as the difference of the two paths' percentiles and as the median of the
per-pair differences, each with a bootstrap 95% interval; how often the API's request
landed a decode step later; throughput through the API / direct; the API's CPU per
request; and, once, the API's RSS per open stream.
Targets on a 2-core machine: <= +2 ms p50, <= +10 ms p99, TTFT <= +5 ms, throughput >= 0.95x.

The lockstep worst case (`--spread 0 --think 0`): every answer alike, every worker sending
the moment its last answer ended; all streams then start and end in the same decode step,
the API relays a burst of endings while the next requests arrive, and any delay becomes
a whole step for the requests that miss the boundary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import aiohttp
import psutil

from rig.llama import tiny_server
from rig.net import free_port, wait_until
from rig.proc import exit_report, spawn_logged

REPO = Path(__file__).resolve().parent.parent


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


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


async def mixed(
    direct_url: str,
    api_url: str,
    bodies: Callable[[int, int], bytes],
    headers: dict,
    concurrency: int,
    pairs_per_worker: int,
    keep_alive: bool,
    think: float,
) -> list[tuple]:
    """Identical requests to both paths under the same load, as pairs.

    One stream: each pair runs back to back (order flipped per pair).  Several streams:
    `concurrency / 2` workers each send their pair *at the same moment*, so the direct and
    the API request join the same llama-server batch step.  With sequential pairs a
    request that arrives a millisecond later can miss a decode step (~10 ms at 1 stream,
    ~70 ms at 8, ~250 ms at 32 with one compute thread) and the per-pair differences then
    measure batch phase, not the API.  Sent together, what differs is only what the API
    adds; a miss it causes still shows, as the rare pair one step apart (the p99).
    Before each pair a worker waits a random 0..`think` s (seeded): independent clients do
    not send in lockstep with the model's decode clock, and closed-loop workers would (each
    sends the moment its last answer ended, i.e. right at a step boundary, where any delay
    on either path becomes a whole step).

    Connections: llama-server closes its connection after every streamed answer (while
    announcing keep-alive), so the direct path connects per request whatever the client
    does.  The API keeps client connections alive, and with `keep_alive` the client uses
    that, as the openai SDK and Open WebUI do."""
    pairs: list[tuple] = []  # (direct result, API result): (latency s, ttft s, tokens) each
    urls = {"direct": direct_url, "api": api_url}
    direct = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
    via_api = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=not keep_alive))
    sessions = {"direct": direct, "api": via_api}
    try:

        async def worker(w: int) -> None:
            rng = random.Random(w)
            for i in range(pairs_per_worker):
                if concurrency > 1 and think > 0:
                    await asyncio.sleep(rng.uniform(0, think))  # arrival pacing, not synchronisation
                body = bodies(w, i)
                order = ("direct", "api") if (w + i) % 2 == 0 else ("api", "direct")
                if concurrency == 1:
                    got = {path: await one(sessions[path], urls[path], body, headers) for path in order}
                else:
                    done = await asyncio.gather(*(one(sessions[path], urls[path], body, headers) for path in order))
                    got = dict(zip(order, done, strict=True))
                pairs.append((got["direct"], got["api"]))

        await asyncio.gather(*(worker(w) for w in range(max(1, concurrency // 2))))
    finally:
        await direct.close()
        await via_api.close()
    return pairs


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


def bootstrap(
    pairs: list[tuple[float, float]], stat: Callable[[list[tuple[float, float]]], float], rounds: int = 2000
) -> tuple[float, float]:
    """95% interval of `stat` over pairs resampled with replacement (seeded: reruns print the same)."""
    rng = random.Random(0)
    values = sorted(stat([pairs[rng.randrange(len(pairs))] for _ in pairs]) for _ in range(rounds))
    return values[int(0.025 * rounds)], values[int(0.975 * rounds) - 1]


def report(level: int, pairs: list[tuple], cpu_ms: float, tokens: int) -> None:
    """Per path percentiles; then the added latency two ways, each with its 95% interval:
    the difference of the two paths' percentiles, and the median of per-pair differences
    (the paired estimate, which cancels what both requests of a pair went through)."""
    figures = {}
    by_path = {"direct": [p[0] for p in pairs], "api": [p[1] for p in pairs]}
    for path, results in by_path.items():
        lat = [r[0] for r in results]
        ttft = [r[1] for r in results]
        busy = sum(lat)  # time spent in requests of this path, summed over workers
        tps = sum(r[2] for r in results) / busy * level
        figures[path] = (pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, pct(ttft, 0.5) * 1e3, pct(ttft, 0.99) * 1e3, tps)
        f = figures[path]
        print(f"{level:>7} {path:<7} {f[0]:>8.1f} {f[1]:>8.1f} {f[2]:>9.1f} {f[3]:>9.1f} {f[4]:>8.1f}")
    d, a = figures["direct"], figures["api"]
    # (direct, api) latency per pair, in ms
    lat_pairs = [(x[0] * 1e3, y[0] * 1e3) for x, y in pairs]
    ttft_pairs = [(x[1] * 1e3, y[1] * 1e3) for x, y in pairs]

    def pct_diff(q: float) -> Callable[[list[tuple[float, float]]], float]:
        return lambda ps: pct([p[1] for p in ps], q) - pct([p[0] for p in ps], q)

    def paired_median(ps: list[tuple[float, float]]) -> float:
        return statistics.median(p[1] - p[0] for p in ps)

    lo, hi = bootstrap(lat_pairs, pct_diff(0.5))
    lo99, hi99 = bootstrap(lat_pairs, pct_diff(0.99))
    print(
        f"{level:>7} {'added':<7} {a[0] - d[0]:>+8.1f} {a[1] - d[1]:>+8.1f} {a[2] - d[2]:>+9.1f} "
        f"{a[3] - d[3]:>+9.1f} {a[4] / d[4]:>7.3f}x  (api minus direct; 95% intervals: p50 {lo:+.1f}..{hi:+.1f}, "
        f"p99 {lo99:+.1f}..{hi99:+.1f})"
    )
    dl = [p[1] - p[0] for p in lat_pairs]
    dt = [p[1] - p[0] for p in ttft_pairs]
    lo, hi = bootstrap(lat_pairs, paired_median)
    tlo, thi = bootstrap(ttft_pairs, paired_median)
    print(
        f"{level:>7} {'paired':<7} {statistics.median(dl):>+8.1f} {'':>8} {statistics.median(dt):>+9.1f} {'':>9}"
        f"   median of {len(dl)} per-pair differences; 95% interval {lo:+.1f}..{hi:+.1f} ms, "
        f"ttft {tlo:+.1f}..{thi:+.1f} ms"
    )
    if level > 1:
        # One decode step at this load: the direct answers' time per token.
        step = statistics.median((r[0] - r[1]) / max(1, r[2] - 1) for r in by_path["direct"]) * 1e3
        later = sum(1 for x in dt if x > step / 2) / len(dt)
        earlier = sum(1 for x in dt if x < -step / 2) / len(dt)
        print(
            f"{level:>7} {'steps':<7} first token a decode step (~{step:.0f} ms) later through the API in "
            f"{later:.1%} of pairs, earlier in {earlier:.1%} (arrival order at the step boundary)"
        )
    print(
        f"{level:>7} {'api cpu':<7} {cpu_ms:>8.2f} ms of API process CPU per request "
        f"(~{tokens} chunks relayed each): the cost that does not depend on machine load"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--requests",
        type=int,
        default=128,
        help="request pairs per concurrency level (three times as many at one stream: they are quick "
        "and their latency varies most from token to token)",
    )
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument(
        "--spread",
        type=int,
        default=4,
        help="answer lengths vary per pair by up to this many tokens around --tokens (both requests of "
        "a pair alike); 0 = every answer alike, so all streams start and end in the same decode "
        "step: the worst burst for the relay",
    )
    ap.add_argument(
        "--think",
        type=float,
        default=0.25,
        help="with several streams, each worker waits a random 0..THINK s before a pair (0 = closed "
        "loop: every request is sent the moment the last one ended, in step with the decode loop)",
    )
    ap.add_argument(
        "--client-close", action="store_true", help="the client opens a new connection to the API for every request too"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="api-bench-"))
    llama = tiny_server("trigger", tmp, ctx_size=32 * 512, parallel=32, threads=1, extra_args=["--threads-http", "80"])
    llama.start()
    key = secrets.token_hex(16)
    (tmp / "keys").write_text(f"bench:{key}\n")
    port = free_port()
    cfg = {
        "state_dir": str(tmp / "state"),
        "roles": {
            "trigger": {"url": llama.url, "model": "trigger"},
            "review": {"enable": False},
            "meta": {"enable": False},
        },
        # No database for this bench: the pool retries in the background, the relay never touches it.
        "database": {"host": "127.0.0.1", "port": free_port()},
        "api": {"port": port, "api_key_file": str(tmp / "keys"), "max_concurrent_per_key": 64},
    }
    (tmp / "config.json").write_text(json.dumps(cfg))
    log = tmp / "api.log"
    proc = spawn_logged(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(tmp / "config.json"), "api"], log, cwd=str(REPO)
    )
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
        lengths = [args.tokens + d for d in range(-args.spread, args.spread + 1)]
        encoded = {
            n: json.dumps(
                {
                    "model": "trigger",
                    "messages": [{"role": "user", "content": "Count slowly."}],
                    "max_tokens": n,
                    "temperature": 0,
                    "seed": 7,
                    "ignore_eos": True,
                    "stream": True,
                }
            ).encode()
            for n in lengths
        }

        def bodies(w: int, i: int) -> bytes:
            return encoded[lengths[(w * 7 + i * 3) % len(lengths)]]  # fixed, varied, same for both of a pair

        print(
            f"llama-server {llama.url} (32 slots, 1 thread), API {api_url}; {lengths[0]}-{lengths[-1]} tokens "
            f"per answer, ~{args.requests} direct/API pairs per level; client connections to the API "
            f"{'closed per request' if args.client_close else 'kept alive'}; cores: {os.cpu_count()}, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        long_body = json.dumps(
            {
                "model": "trigger",
                "messages": [{"role": "user", "content": "Go on."}],
                "max_tokens": 400,
                "ignore_eos": True,
                "stream": True,
            }
        ).encode()
        per = asyncio.run(rss_per_stream(api_url, long_body, headers, psutil.Process(proc.pid), 32))
        print(
            f"API RSS per open stream (32 open): {per / 1024:.1f} KiB; "
            f"API RSS now {psutil.Process(proc.pid).memory_info().rss / 2**20:.1f} MiB"
        )
        print(f"{'streams':>7} {'path':<7} {'p50 ms':>8} {'p99 ms':>8} {'ttft p50':>9} {'ttft p99':>9} {'tok/s':>8}")
        for level in [int(x) for x in args.levels.split(",")]:
            pairs = 3 * args.requests if level == 1 else max(2, args.requests // (level // 2))
            asyncio.run(
                mixed(
                    f"{llama.url}/v1/chat/completions",
                    f"{api_url}/v1/chat/completions",
                    bodies,
                    headers,
                    level,
                    1,
                    not args.client_close,
                    args.think,
                )
            )  # warm-up
            api_proc = psutil.Process(proc.pid)
            cpu0 = api_proc.cpu_times()
            pairs_done = asyncio.run(
                mixed(
                    f"{llama.url}/v1/chat/completions",
                    f"{api_url}/v1/chat/completions",
                    bodies,
                    headers,
                    level,
                    pairs,
                    not args.client_close,
                    args.think,
                )
            )
            cpu1 = api_proc.cpu_times()
            cpu_ms = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) * 1e3 / len(pairs_done)
            report(level, pairs_done, cpu_ms, args.tokens)
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
