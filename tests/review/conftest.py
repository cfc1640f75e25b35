"""Review tests: their configuration and waits (the ReviewService they build: rig/review.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ai_sysadmin.config import Config, parse_config


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition with a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(0.05)


def review_cfg(tmp_path: Path, url: str, model: str = "review", **role: Any) -> Config:
    # The test servers give each slot 2048 tokens of context (4096, --parallel 2).
    data = {"url": url, "model": model, "timeout": 300, "context_size": 2048, "max_tokens": 900, **role}
    return parse_config({"state_dir": str(tmp_path / "state"), "roles": {"review": data}}, env={})
