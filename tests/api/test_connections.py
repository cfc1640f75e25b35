"""Floods over real sockets against the real API process: half-open connections, the cap on
connections without a key, the open-files limit, and 400 concurrent status calls.

`guarded_api` runs with the defaults (header timeout 5 s, 1,024 unauthenticated
connections, 8 REST requests per key) and is started the way a systemd unit without
LimitNOFILE= starts it: soft RLIMIT_NOFILE 1,024.  `capped_api` has a small cap and a
long header timeout, so what closes its flood is the cap and nothing else.
"""

from __future__ import annotations

import asyncio
import resource
import secrets
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from rig.llama import LlamaServer
from tests.api.conftest import ApiProcess, base_config, metric

PARTIAL_HEADER = b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"  # never finished
FLOOD = 1100
HEADER_TIMEOUT = 5.0  # api.header_timeout's default


def _keyed_api(
    tmp: Path,
    *,
    trigger: LlamaServer,
    review: LlamaServer,
    meta: LlamaServer,
    embed: LlamaServer,
    db: dict[str, Any],
    api: dict[str, Any],
) -> ApiProcess:
    # One key in the format from before scopes (read+chat): the flood tests need nothing more.
    keys = {"reader": "k-" + secrets.token_hex(16)}
    key_file = tmp / "api.keys"
    key_file.write_text(f"reader:{keys['reader']}\n")
    cfg = base_config(
        tmp, trigger=trigger, review=review, meta=meta, embed=embed, db=db, api={"api_key_file": str(key_file), **api}
    )
    # Soft limit 1,024: systemd's default for a unit that does not set LimitNOFILE=.
    return ApiProcess(cfg, tmp, keys=keys, nofile_soft=1024)


@pytest.fixture(scope="module")
def guarded_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    api_review: LlamaServer,
    api_meta: LlamaServer,
    llama_embed: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    proc = _keyed_api(
        tmp_path_factory.mktemp("guarded-api"),
        trigger=llama_trigger,
        review=api_review,
        meta=api_meta,
        embed=llama_embed,
        db=api_db,
        api={},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def capped_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    api_review: LlamaServer,
    api_meta: LlamaServer,
    llama_embed: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    proc = _keyed_api(
        tmp_path_factory.mktemp("capped-api"),
        trigger=llama_trigger,
        review=api_review,
        meta=api_meta,
        embed=llama_embed,
        db=api_db,
        api={"max_unauthenticated_connections": 100, "header_timeout": 60},
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _raise_own_open_files(at_least: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < at_least:
        assert hard == resource.RLIM_INFINITY or hard >= at_least, f"hard RLIMIT_NOFILE {hard} < {at_least}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (at_least, hard))


def _half_open(port: int, n: int) -> list[socket.socket]:
    """n connections, each having sent the start of a request header and nothing more."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(PARTIAL_HEADER)
            socks.append(s)
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def _closed_by_peer(s: socket.socket) -> str | None:
    """How the server closed it: "eof", or "reset" when it closed with our bytes still unread."""
    try:
        return "eof" if s.recv(4096) == b"" else None
    except ConnectionResetError:
        return "reset"


def _wait_closed(socks: list[socket.socket], deadline: float, want: int | None = None) -> dict[int, tuple[float, str]]:
    """Index -> (monotonic time, how) for the sockets the server closed, once `want` (all) are or at `deadline`."""
    closed: dict[int, tuple[float, str]] = {}
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    try:
        while len(closed) < (len(socks) if want is None else want) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                i = key.data
                how = _closed_by_peer(socks[i])
                if how is not None:
                    closed[i] = (time.monotonic(), how)
                    sel.unregister(socks[i])
    finally:
        sel.close()
    return closed


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def _open_files_limit(pid: int) -> tuple[int, int]:
    line = next(ln for ln in Path(f"/proc/{pid}/limits").read_text().splitlines() if ln.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


def test_open_files_limit_is_raised_to_the_hard_limit(guarded_api: ApiProcess) -> None:
    assert guarded_api.proc is not None
    soft, hard = _open_files_limit(guarded_api.proc.pid)
    assert soft == hard and soft > 1024, (soft, hard)


def test_key_holders_are_served_while_1100_half_open_connections_are_held(guarded_api: ApiProcess) -> None:
    _raise_own_open_files(FLOOD + 256)
    before = {
        r: metric(guarded_api, "ai_sysadmin_api_connections_closed_total", reason=r)
        for r in ("header_timeout", "unauthenticated_cap")
    }
    opened = time.monotonic()
    socks = _half_open(guarded_api.port, FLOOD)
    try:
        flooded = time.monotonic()
        t0 = time.monotonic()
        r = httpx.get(
            f"{guarded_api.url}/api/v1/incidents?limit=1",
            timeout=10,
            headers={"Authorization": f"Bearer {guarded_api.keys['reader']}"},
        )
        latency = time.monotonic() - t0
        assert r.status_code == 200, r.text
        assert latency < 1.0, f"a key-holder waited {latency:.2f}s behind {FLOOD} half-open connections"
        # ... while the flood was still held: no header timer can have fired yet.
        assert time.monotonic() - opened < HEADER_TIMEOUT

        closed = _wait_closed(socks, flooded + HEADER_TIMEOUT + 15)
        assert len(closed) == FLOOD, f"{FLOOD - len(closed)} half-open connections still open"
        # Beyond the cap (1,024) the oldest were closed at once (one more for our keyed
        # connection); every other one by its header timer, HEADER_TIMEOUT after it was
        # accepted, not before -- with a clean EOF, its partial header read and dropped.
        early = [i for i, (at, _) in closed.items() if at - opened < HEADER_TIMEOUT * 0.8]
        assert len(early) <= FLOOD - 1024 + 1, len(early)
        late = [how for i, (_, how) in closed.items() if i not in early]
        assert len(late) >= 1000 and set(late) == {"eof"}, (len(late), set(late))
    finally:
        for s in socks:
            s.close()
    after = {r: metric(guarded_api, "ai_sysadmin_api_connections_closed_total", reason=r) - before[r] for r in before}
    assert after["header_timeout"] + after["unauthenticated_cap"] == FLOOD, after
    assert after["header_timeout"] >= 1000, after


def test_400_concurrent_status_calls_are_limited_and_memory_stays_bounded(guarded_api: ApiProcess) -> None:
    """One key, 400 status calls at once: answered (200 or 429 at once), one status round shared, RSS bounded."""
    assert guarded_api.proc is not None
    pid = guarded_api.proc.pid
    _raise_own_open_files(1024)
    headers = {"Authorization": f"Bearer {guarded_api.keys['reader']}"}
    # Warm up with another endpoint: status itself must not be cached yet when the burst comes.
    assert httpx.get(f"{guarded_api.url}/api/v1/incidents", headers=headers, timeout=30).status_code == 200
    baseline = _rss_kib(pid, "VmRSS")
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM: the peak from here on

    async def burst() -> list[tuple[int, str | None]]:
        conn = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:

            async def one() -> tuple[int, str | None]:
                async with s.get(f"{guarded_api.url}/api/v1/status", headers=headers) as r:
                    await r.read()
                    return r.status, r.headers.get("Retry-After")

            return await asyncio.gather(*(one() for _ in range(400)))

    t0 = time.monotonic()
    results = asyncio.run(burst())
    took = time.monotonic() - t0
    peak = _rss_kib(pid, "VmHWM")
    codes = [c for c, _ in results]
    assert set(codes) <= {200, 429}, sorted(set(codes))
    assert codes.count(200) >= 1 and codes.count(429) >= 1, (codes.count(200), codes.count(429))
    assert all(ra == "1" for c, ra in results if c == 429)
    assert took < 30, f"400 status calls took {took:.1f}s"
    grew_mib = (peak - baseline) / 1024
    assert grew_mib < 100, f"RSS grew by {grew_mib:.0f} MiB during 400 concurrent status calls"
    assert "Traceback" not in guarded_api.log()


def test_flood_beyond_the_cap_closes_the_oldest_and_spares_key_holders(capped_api: ApiProcess) -> None:
    """Cap 100, header timeout 60 s: 300 half-open connections; the oldest 200 are closed at
    once, the newest 100 stay; an authenticated keep-alive connection survives; a new
    key-holder gets in at once."""
    _raise_own_open_files(1024)
    key = capped_api.keys["reader"]
    keyed = socket.create_connection(("127.0.0.1", capped_api.port), timeout=10)
    request = (
        f"GET /api/v1/incidents?limit=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()
    try:
        keyed.sendall(request)
        assert _read_response(keyed) == 200
        socks = _half_open(capped_api.port, 300)
        try:
            closed = _wait_closed(socks, time.monotonic() + 20, want=200)
            assert sorted(closed) == list(range(200)), (len(closed), sorted(set(range(300)) - set(closed))[:5])
            # The newest 100 stay open: nothing to read on any of them (their header timer is 60 s).
            with selectors.DefaultSelector() as sel:
                for s in socks[200:]:
                    sel.register(s, selectors.EVENT_READ)
                assert sel.select(timeout=0) == []
            # The authenticated connection was never a candidate: it answers again.
            keyed.sendall(request)
            assert _read_response(keyed) == 200
            t0 = time.monotonic()
            r = httpx.get(
                f"{capped_api.url}/api/v1/incidents?limit=1", timeout=10, headers={"Authorization": f"Bearer {key}"}
            )
            assert r.status_code == 200 and time.monotonic() - t0 < 1.0
        finally:
            for s in socks:
                s.close()
    finally:
        keyed.close()
    assert metric(capped_api, "ai_sysadmin_api_connections_closed_total", reason="unauthenticated_cap") >= 200


def _read_response(s: socket.socket) -> int:
    """Read one HTTP/1.1 response with a Content-Length body; its status code."""
    s.setblocking(True)
    s.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed"
        body += chunk
    return int(lines[0].split()[1])
