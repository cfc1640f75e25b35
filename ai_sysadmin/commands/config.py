"""`ai-sysadmin config check|show|docs`: validate the configuration, print the effective values or the reference."""

from __future__ import annotations

import argparse
import dataclasses
import json

from pydantic import BaseModel

from ai_sysadmin.secret import Secret


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="validate the configuration, show its effective values, or print its reference")
    p.add_argument(
        "action",
        choices=("check", "show", "docs"),
        help="docs: print docs/configuration.md as generated from the models (needs no configuration)",
    )
    p.set_defaults(func=run)


def _plain(value: object) -> object:
    if isinstance(value, Secret):
        return "<secret>"  # never print a secret, even to the admin's terminal
    if isinstance(value, BaseModel):  # every key, then the values that follow from them (name, secrets, keys)
        names = [*type(value).model_fields, *type(value).model_computed_fields]
        return {n: _plain(getattr(value, n)) for n in names}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, str):
        return str(value)  # a *_file value is a str carrying its secret: print the reference only
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):  # an API key's scopes
        return sorted(str(_plain(v)) for v in value)
    return value


def run(args: argparse.Namespace, load) -> int:
    if args.action == "docs":
        from ai_sysadmin.configdoc import render

        print(render(), end="")
        return 0
    cfg = load()
    if args.action == "check":
        print(f"configuration ok ({cfg.source or 'built-in defaults'})")
    else:
        print(json.dumps(_plain(cfg), indent=2))
    return 0
