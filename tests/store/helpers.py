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
