"""`ai-sysadmin run`: the service (what the systemd unit starts)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the service: follow the journal and record triggers")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.orchestrator import run_service

    return run_service(load())
