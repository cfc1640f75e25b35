"""`ai-sysadmin pause [--for 2h]` and `ai-sysadmin resume`: the global action pause.

While paused, the policy queues every proposal for a person and the executor runs
nothing (approved actions wait; an approval that outlives its TTL meanwhile is void).
Both are decisions in the ledger (store/ledger.py): anyone may pause, but the executor
honours a resume only when it is signed with the approval key (root, the API).
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
    p.add_argument(
        "--for",
        dest="duration",
        type=parse_duration,
        metavar="DURATION",
        help="e.g. 2h; without it the pause lasts until `ai-sysadmin resume`",
    )
    p.add_argument("--reason", default="", help="why (recorded)")
    p.add_argument(
        "--key-file", help="approval key (default: actions.approval_key_file); a signed pause may replace a longer one"
    )
    p.set_defaults(func=run_pause)
    r = sub.add_parser("resume", help="end a pause (signed with the approval key: needs root or the API)")
    r.add_argument("--reason", default="", help="why (recorded)")
    r.add_argument("--key-file", help="approval key (default: actions.approval_key_file)")
    r.set_defaults(func=run_resume)


def run_pause(args: argparse.Namespace, load) -> int:
    return asyncio.run(_run(load(), args, pause=True))


def run_resume(args: argparse.Namespace, load) -> int:
    return asyncio.run(_run(load(), args, pause=False))


async def _run(cfg, args: argparse.Namespace, *, pause: bool) -> int:
    import psycopg

    from ai_sysadmin.actions import approvals, signing
    from ai_sysadmin.actions.facts import now_utc
    from ai_sysadmin.commands.actions import local_actor
    from ai_sysadmin.compose.admin import admin_pool

    verb = "pause" if pause else "resume"
    try:
        key: bytes | None = signing.load_key(cfg, override=args.key_file)
    except signing.KeyUnavailable as exc:
        if not pause:  # lifting caution is a person's signed decision
            print(f"ai-sysadmin resume: {exc}", file=sys.stderr)
            return 1
        key = None  # a pause only adds caution: unsigned is fine
    opened = False
    try:
        async with admin_pool(cfg) as pool:
            opened = True
            if pause:
                until = now_utc().replace(microsecond=0) + args.duration if args.duration else None
                out = await approvals.pause(pool, local_actor(), until, args.reason, key=key)
            else:
                out = await approvals.resume(pool, local_actor(), args.reason, key=key)
    except approvals.ApprovalError as exc:
        print(f"ai-sysadmin {verb}: {exc}", file=sys.stderr)
        return 1
    except psycopg.Error as exc:
        if not opened and isinstance(exc, psycopg.OperationalError):
            print(
                f"ai-sysadmin: cannot reach PostgreSQL ({str(exc).strip()}); run `ai-sysadmin doctor`", file=sys.stderr
            )
        else:
            print(f"ai-sysadmin: {verb} failed ({str(exc).strip().splitlines()[0]})", file=sys.stderr)
        return 1
    if pause:
        print(
            f"actions paused until {out['paused_until']}"
            + ("" if out["signed"] else " (unsigned: it cannot shorten a longer pause)")
        )
    else:
        print("actions resumed" if out["was_paused"] else "actions were not paused")
    return 0
