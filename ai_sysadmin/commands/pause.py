"""`ai-sysadmin pause [--for 2h]` and `ai-sysadmin resume`: the global action pause.

While paused, the policy queues every proposal for a person and the executor runs
nothing (approved actions wait; an approval that outlives its TTL meanwhile is void).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `1d`, or `1h30m`."""
    parts = re.findall(r"(\d+)([smhd])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30m, 2h, 1d, 1h30m)")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError("the duration must be longer than 0")
    return timedelta(seconds=seconds)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pause", help="pause all actions (until `resume`, or for a duration)")
    p.add_argument("--for", dest="duration", type=parse_duration, metavar="DURATION",
                   help="e.g. 2h; without it the pause lasts until `ai-sysadmin resume`")
    p.set_defaults(func=run_pause)
    r = sub.add_parser("resume", help="end a pause")
    r.set_defaults(func=run_resume)


def run_pause(args: argparse.Namespace, load) -> int:
    return asyncio.run(_run(load(), args.duration, pause=True))


def run_resume(args: argparse.Namespace, load) -> int:
    return asyncio.run(_run(load(), None, pause=False))


async def _run(cfg, duration: timedelta | None, *, pause: bool) -> int:
    import psycopg
    from psycopg.types.json import Jsonb

    from ai_sysadmin.actions.state import clear_pause, now_utc, set_pause
    from ai_sysadmin.commands.actions import local_actor
    from ai_sysadmin.store.db import connect_kwargs

    db = cfg.database
    try:
        conn = await psycopg.AsyncConnection.connect(db.conninfo(), **connect_kwargs(db))
    except psycopg.OperationalError as exc:
        print(f"ai-sysadmin: cannot reach PostgreSQL ({str(exc).strip()}); run `ai-sysadmin doctor`", file=sys.stderr)
        return 1
    try:
        async with conn.transaction():
            now = now_utc()
            until = now + duration if duration else None
            if pause:
                await set_pause(conn, until)
                event, detail = "actions.paused", {"until": until.isoformat() if until else "indefinitely"}
            else:
                was = await clear_pause(conn)
                event, detail = "actions.resumed", {"was_paused": was}
            await conn.execute("INSERT INTO audit_log (at, actor, event, subject, detail) VALUES (%s, %s, %s, %s, %s)",
                               (now, local_actor(), event, "actions", Jsonb(detail)))
    except psycopg.Error as exc:
        print(f"ai-sysadmin: {'pause' if pause else 'resume'} failed ({str(exc).strip().splitlines()[0]})",
              file=sys.stderr)
        return 1
    finally:
        await conn.close()
    if pause:
        print(f"actions paused {'until ' + until.isoformat(timespec='seconds') if until else 'until resume'}")
    else:
        print("actions resumed" if detail["was_paused"] else "actions were not paused")
    return 0
