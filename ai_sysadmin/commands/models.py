"""`ai-sysadmin models`: what each role's llama-server serves (model, file, context, slots, tokens/s)."""

from __future__ import annotations

import argparse
import asyncio
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="each role's served model, file, context size, busy slots, recent tokens/s")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.llm.serving import format_table, serving_info

    cfg = load()
    infos = asyncio.run(serving_info(cfg.roles.enabled()))
    if args.json:
        print(json.dumps([i.to_json() for i in infos], indent=2))
    else:
        print(format_table(infos))
        down = [i for i in infos if not i.up]
        for i in down:
            print(
                f"{i.role}: {i.status} at {i.url}; check `systemctl status llama-{i.role}` or run `ai-sysadmin doctor`"
            )
    return 0 if all(i.up for i in infos) else 1
