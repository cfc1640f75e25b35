"""`ai-sysadmin api`: serve the OpenAI-compatible API, REST and /metrics (the ai-sysadmin-api unit)."""

from __future__ import annotations

import argparse
import asyncio
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the OpenAI-compatible API (Open WebUI, openai SDK), REST and /metrics")
    p.add_argument("--host", help="listen address (overrides api.host; beyond loopback a key file is required)")
    p.add_argument("--port", type=int, help="listen port (overrides api.port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.compose.api import RefuseToStart, serve

    cfg = load()
    if args.host or args.port:
        cfg = _override(cfg, args.host, args.port)
    try:
        asyncio.run(serve(cfg))
    except RefuseToStart as exc:
        print(f"ai-sysadmin api: {exc}", file=sys.stderr)
        return 2
    return 0


def _override(cfg, host: str | None, port: int | None):
    """Apply --host/--port through the same validation as the file (a non-loopback host needs keys)."""
    from ai_sysadmin.config import ConfigError, ConfigIssue, is_loopback

    api = cfg.api
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError([ConfigIssue("--port", "must be a TCP port between 1 and 65535")])
    if host is not None and not is_loopback(host) and not api.keys:
        raise ConfigError([ConfigIssue("--host", f"{host} is not loopback: set api.api_key_file first")])
    new = api.model_copy(
        update={
            "host": host or api.host,
            "port": port or api.port,
            "require_auth": api.require_auth or (host is not None and not is_loopback(host)),
        }
    )
    return cfg.model_copy(update={"api": new})
