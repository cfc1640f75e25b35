"""Small helpers shared by the store tests (trigger rows: rig/triggers.py)."""

from __future__ import annotations


async def wait_for(check, timeout: float, what: str, poll: float = 0.05) -> None:
    """Poll an (async or sync) condition until true; fail with `what` after `timeout` seconds."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout:.0f}s")
        await asyncio.sleep(poll)


async def insert_host_metrics(conn, host: str, samples) -> None:
    """`samples` as rows of `host`, written directly by the schema owner's connection: what the
    hub holds of a member once its collector wrote them (a member's own role has no INSERT on
    metrics; it goes through ai_sysadmin_member_metrics, tests/collect/test_member_collector.py)."""
    from datetime import UTC, datetime

    for s in samples:
        await conn.execute(
            "INSERT INTO metrics (ts, name, subject, value, host) VALUES (%s, %s, %s, %s, %s)",
            (datetime.fromtimestamp(s.ts, UTC), s.name, s.subject, s.value, host),
        )
