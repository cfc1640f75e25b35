"""Run ai-sysadmin locally with its embedded defaults, on real parts.

    scripts/local.sh [--state DIR] [--check]

Starts the three role servers (llama-server with the tiny SmolLM2 model) on the
default ports 40080-40082 and an embedding server on 40084, a private PostgreSQL
cluster under the state dir, writes a config that differs from the built-in defaults
only in where that database and the state live (and in switching the embed role on),
and runs `ai-sysadmin doctor`.  Then it starts the service (`ai-sysadmin run`) and the
API on 127.0.0.1:40083 -- without a key, which the API allows on loopback only -- and
keeps everything running until Ctrl-C (with --check it stops after the doctor and exits
with its status).  Every `ai-sysadmin` command runs as `python -m ai_sysadmin` from this
checkout (PYTHONPATH), never through the shared venv's editable install.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ai_sysadmin.config import ROLE_DEFAULT_PORTS
from rig.llama import LlamaServer, tiny_server
from rig.postgres import PgCluster

LOCAL_META_CTX = 8192  # tokens per slot of the local meta server (the service's budgets follow it)

REPO = Path(__file__).resolve().parent.parent


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/local.sh")
    ap.add_argument("--state", type=Path, default=REPO / ".state", help="local state directory (default: .state)")
    ap.add_argument("--check", action="store_true", help="exit after the doctor instead of staying up")
    args = ap.parse_args(argv)
    state: Path = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)  # the private PostgreSQL runs as 'postgres' when we are root

    servers: list[LlamaServer] = []
    cluster: PgCluster | None = None
    children: list[subprocess.Popen] = []
    try:
        for role in ("trigger", "review", "meta", "embed"):
            port = ROLE_DEFAULT_PORTS[role]
            if not _port_free(port):
                print(f"local: port {port} (role {role}) is in use; stop what listens there", file=sys.stderr)
                return 1
            print(f"local: starting llama-server for role {role} on 127.0.0.1:{port}", flush=True)
            # The meta role's tool catalog and an investigation need ~8k tokens per slot.
            size = {"ctx_size": 2 * LOCAL_META_CTX, "parallel": 2} if role == "meta" else {}
            servers.append(
                tiny_server(
                    role, state / "logs", port=port, tools=(role == "meta"), embeddings=(role == "embed"), **size
                ).start()
            )
        print("local: starting private PostgreSQL", flush=True)
        cluster = PgCluster.create(state / "postgres").start()
        try:
            cluster.create_database("ai-sysadmin")
        except Exception as exc:  # already there from an earlier run
            if "already exists" not in str(exc):
                raise
        config = {
            "state_dir": str(state / "service"),
            "database": cluster.database_config("ai-sysadmin"),
            # The embed role is off by default; on here so `knowledge search` works locally.
            "roles": {"embed": {}, "meta": {"context_size": LOCAL_META_CTX}},
        }
        cfg_path = state / "config.json"
        cfg_path.write_text(json.dumps(config, indent=2) + "\n")
        # `python -m` with this checkout first on the path: the venv's `ai-sysadmin` script
        # imports whichever checkout the shared venv was installed from.
        exe = [sys.executable, "-m", "ai_sysadmin"]
        path = os.environ.get("PYTHONPATH")
        env = {
            **os.environ,
            "AI_SYSADMIN_CONFIG": str(cfg_path),
            "PYTHONPATH": str(REPO) + (os.pathsep + path if path else ""),
        }
        print(f"local: config {cfg_path}\nlocal: ai-sysadmin doctor", flush=True)
        rc = subprocess.run([*exe, "doctor"], env=env, cwd=REPO).returncode
        if args.check:
            return rc
        for sub in _service_commands():
            children.append(subprocess.Popen([*exe, *sub], env=env, cwd=REPO))
        print("local: running; Ctrl-C stops everything", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        return 0
    finally:
        for child in children:
            child.terminate()
            child.wait(10)
        for s in servers:
            s.stop()
        if cluster is not None:
            cluster.stop()


def _service_commands() -> list[list[str]]:
    """Long-running subcommands that exist in this build (layers arrive issue by issue)."""
    from ai_sysadmin.cli import COMMAND_MODULES

    return [[c] for c in ("run", "api") if f"ai_sysadmin.commands.{c}" in COMMAND_MODULES]


if __name__ == "__main__":
    raise SystemExit(main())
