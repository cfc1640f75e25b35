"""`ai-sysadmin executor [--once]`: the privileged executor (root, its own unit and config).

Runs approved catalog actions after re-validating each against its own configuration
(docs/actions.md).  `--once` handles what is pending (after recovering interrupted
actions) and exits.
"""

from __future__ import annotations

import argparse
import asyncio


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("executor", help="run approved actions (the privileged executor)")
    p.add_argument("--once", action="store_true", help="handle pending actions, then exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.compose.executor import run_executor

    cfg = load()
    return asyncio.run(run_executor(cfg, once=args.once))
