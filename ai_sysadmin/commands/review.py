"""`ai-sysadmin review`: placeholder registered so the command list is fixed; its issue builds it."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="(not built yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    print("ai-sysadmin review: not built yet", file=sys.stderr)
    return 2
