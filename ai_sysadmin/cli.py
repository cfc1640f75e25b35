"""The `ai-sysadmin` command line: one subcommand module each, under ai_sysadmin/commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ai_sysadmin import __version__
from ai_sysadmin.config import Config, ConfigError, load_config

# Each module defines `register(subparsers)`; the subcommand sets `func(args, load) -> int`.
COMMAND_MODULES = (
    "ai_sysadmin.commands.doctor",
    "ai_sysadmin.commands.config",
    "ai_sysadmin.commands.incidents",
    "ai_sysadmin.commands.knowledge",
    "ai_sysadmin.commands.replay",
    "ai_sysadmin.commands.run",
    "ai_sysadmin.commands.status",
    "ai_sysadmin.commands.review",
    "ai_sysadmin.commands.actions",
    "ai_sysadmin.commands.pause",  # pause and resume
    "ai_sysadmin.commands.executor",
    "ai_sysadmin.commands.ask",
    "ai_sysadmin.commands.chat",
    "ai_sysadmin.commands.tools",
    "ai_sysadmin.commands.api",
    "ai_sysadmin.commands.models",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-sysadmin", description="Autonomous system administrator for NixOS.")
    parser.add_argument("--version", action="version", version=f"ai-sysadmin {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="JSON configuration (default: $AI_SYSADMIN_CONFIG, else built-in defaults)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    def load() -> Config:
        cfg = load_config(args.config)
        logging.basicConfig(level=cfg.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
        # httpx logs every request at INFO; that is debugging detail, not service news.
        logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
        return cfg

    try:
        return int(args.func(args, load) or 0)
    except ConfigError as exc:
        print(f"ai-sysadmin: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
