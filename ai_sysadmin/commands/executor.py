"""`ai-sysadmin executor [--once]`: the privileged executor (root, its own unit and config).

Runs approved catalog actions after re-validating each against its own configuration
(docs/actions.md).  `--once` handles what is pending (after recovering interrupted
actions) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("executor", help="run approved actions (the privileged executor)")
    p.add_argument("--once", action="store_true", help="handle pending actions, then exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    cfg = load()

    async def main() -> int:
        from ai_sysadmin.actions.executor import Executor

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await Executor(cfg).run(stop, once=args.once)

    return asyncio.run(main())
