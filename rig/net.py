"""Free loopback ports and readiness polling."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A loopback port the kernel just handed out (bind 0), released for the caller to use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    poll: float = 0.05,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll `check` until it is true; fail early when `alive` reports the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if alive is not None:
            dead = alive()
            if dead:
                raise RuntimeError(f"{what}: {dead}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(poll)
