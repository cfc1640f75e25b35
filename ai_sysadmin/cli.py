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
    "ai_sysadmin.commands.preflight",
    "ai_sysadmin.commands.eval",
    "ai_sysadmin.commands.fleet",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ai-sysadmin", description="Autonomous system administrator for NixOS.")
    parser.add_argument("--version", action="version", version=f"ai-sysadmin {__version__}")
    parser.add_argument(
        "--config", metavar="PATH", help="JSON configuration (default: $AI_SYSADMIN_CONFIG, else built-in defaults)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _config_everywhere(parser)
    return parser


def _config_everywhere(parser: argparse.ArgumentParser) -> None:
    """Accept `--config PATH` after any (sub)command too: `ai-sysadmin doctor --config x.json`.

    default=SUPPRESS: a subcommand that is not given --config leaves the top-level value
    (or its default) alone.  Recursive, so nested subcommands (`actions approve`) take it too.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for sub in set(action.choices.values()):
            if "--config" not in sub._option_string_actions:
                sub.add_argument(
                    "--config",
                    metavar="PATH",
                    default=argparse.SUPPRESS,
                    help="JSON configuration (as before the command)",
                )
            _config_everywhere(sub)


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
    except Exception as exc:  # the safety net: one line with the problem and the fix, never a traceback
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        print(f"ai-sysadmin {getattr(args, 'command', '')}: {_explain(exc)}".replace("  ", " "), file=sys.stderr)
        return 1


def _explain(exc: BaseException) -> str:
    """What went wrong and how to fix it, for errors a command did not handle itself."""
    from ai_sysadmin.store.db import DatabaseUnavailable, SchemaNotMigrated

    if isinstance(exc, (DatabaseUnavailable, SchemaNotMigrated)):
        return str(exc)
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None:
        if isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)):
            return str(SchemaNotMigrated.from_error(exc))
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return str(DatabaseUnavailable.from_error(exc))
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            return (
                f"the database refused access ({_first_line(exc)}); run as the service user or grant the role "
                "access (see `ai-sysadmin doctor`)"
            )
    if isinstance(exc, PermissionError):
        return f"{exc.filename or 'a file'}: permission denied; run as a user that can read it"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or 'a file'}: no such file or directory"
    if isinstance(exc, OSError):
        return f"{exc.filename or 'I/O'}: {exc.strerror or exc}"
    return (
        f"unexpected error: {type(exc).__name__}: {_first_line(exc)} "
        "(a bug: please report it; run with log_level debug for details)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
