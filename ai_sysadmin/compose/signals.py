"""SIGTERM and SIGINT as an asyncio.Event: how every long-running process is asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
import signal


def stop_on_signals(stop: asyncio.Event | None = None) -> asyncio.Event:
    """`stop` (or a new event), set by SIGTERM/SIGINT from now on (no-op where signals cannot be handled)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    return stop
