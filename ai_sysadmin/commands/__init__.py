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


def host_arg(value: str) -> str:
    """`--host H`: a host id, or a usage error that names the option."""
    from ai_sysadmin.config import host_id_problem

    problem = host_id_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{value[:70]!r} {problem}")
    return value


def hosts_text(row: dict[str, Any]) -> str:
    """An incident's host, or for a fleet incident its hosts (`fleet: a, b`)."""
    hosts = list(row.get("hosts") or ()) or [row.get("host") or "-"]
    return f"fleet: {', '.join(hosts)}" if len(hosts) > 1 else str(hosts[0])
