"""`ai-sysadmin config check|show`: validate the configuration, print the effective values."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ai_sysadmin.config import Secret


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="validate the configuration or show its effective values")
    p.add_argument("action", choices=("check", "show"))
    p.set_defaults(func=run)


def _plain(value: object) -> object:
    if isinstance(value, Secret):
        return "<secret>"  # never print a secret, even to the admin's terminal
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):  # an API key's scopes
        return sorted(str(_plain(v)) for v in value)
    return value


def run(args: argparse.Namespace, load) -> int:
    cfg = load()
    if args.action == "check":
        print(f"configuration ok ({cfg.source or 'built-in defaults'})")
    else:
        print(json.dumps(_plain(cfg), indent=2))
    return 0
