"""`ai-sysadmin run`: the service (what the systemd unit starts)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run the service: journal triggers, metrics, incidents, reviews, investigations, proposals"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    import logging

    from ai_sysadmin.orchestrator import run_service

    cfg = load()
    logging.getLogger("drain3").setLevel(logging.WARNING)  # its INFO lines are noise in the service log
    return run_service(cfg)
