"""Subcommands of the `ai-sysadmin` CLI (one module each)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any


def quiet_pool_logs() -> None:
    """For one-shot commands: one line about an unreachable database is enough, and the
    pool would repeat it at every reconnection attempt."""
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def db_command(main: Callable[[argparse.Namespace, Any], Coroutine[Any, Any, int]]) -> Callable[..., int]:
    """A subcommand's `run` for `main(args, cfg)`, a one-shot talk with the database."""

    def run(args: argparse.Namespace, load: Callable[[], Any]) -> int:
        quiet_pool_logs()
        return asyncio.run(main(args, load()))

    return run
