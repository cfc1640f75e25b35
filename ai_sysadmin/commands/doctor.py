"""`ai-sysadmin doctor`: one line per configured part; exit 0 only when all are fine."""

from __future__ import annotations

import argparse
import asyncio

from ai_sysadmin import doctor


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check every configured part and say how to fix what is broken")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    cfg = load()
    results = asyncio.run(doctor.run_checks(cfg))
    print(doctor.report(results, as_json=args.json))
    return doctor.exit_code(results)
