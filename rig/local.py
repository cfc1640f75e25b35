"""Run ai-sysadmin locally with its embedded defaults, on real parts.

    scripts/local.sh [--state DIR] [--check] [--tiny]

Starts the three role servers on the default ports 40080-40082 and an embedding server
on 40084 -- the judge model (Qwen2.5-Coder-1.5B-Instruct) for the roles that judge
(review, meta), the tiny SmolLM2-135M for the trigger role and embeddings; `--tiny`
puts every role on SmolLM2 (fast, but it cannot judge) -- a private PostgreSQL
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
from rig.llama import LlamaServer, judge_server, tiny_server
from rig.postgres import PgCluster

LOCAL_META_CTX = 8192  # tokens per slot of the local meta server (the service's budgets follow it)
LOCAL_REVIEW_CTX = 8192  # tokens per slot of the local review server: roles.review.context_size's default
JUDGE_ROLES = ("review", "meta")  # the roles whose answers are judgement, not plumbing


def server_plan(*, tiny: bool, cpus: int) -> dict[str, dict[str, object]]:
    """Which model serves each local role, and how.

    The roles that judge get the judge model unless `tiny`: a newcomer's first `ask` or
    review needs a model that can judge, and SmolLM2-135M proposes whatever fits the
    schema (docs/eval.md). The trigger role classifies one log template per call and the
    embed role only embeds: the tiny model is enough there. Judge servers use every core
    (an interactive `ask` is the only load); two slots each, so an investigation and a
    review (or two clients) do not queue behind each other.
    """
    plan: dict[str, dict[str, object]] = {}
    for role in ("trigger", "review", "meta", "embed"):
        judge = role in JUDGE_ROLES and not tiny
        opts: dict[str, object] = {"model": "judge" if judge else "tiny", "tools": role == "meta"}
        if role == "embed":
            opts["embeddings"] = True
        if role == "meta":
            opts |= {"ctx_size": 2 * LOCAL_META_CTX, "parallel": 2}
        elif role == "review" and judge:
            opts |= {"ctx_size": 2 * LOCAL_REVIEW_CTX, "parallel": 2}
        if judge:
            opts["threads"] = max(1, cpus)
        plan[role] = opts
    return plan


REPO = Path(__file__).resolve().parent.parent


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/local.sh")
    ap.add_argument("--state", type=Path, default=REPO / ".state", help="local state directory (default: .state)")
    ap.add_argument("--check", action="store_true", help="exit after the doctor instead of staying up")
    ap.add_argument(
        "--tiny",
        action="store_true",
        help="serve every role with SmolLM2-135M (fast; cannot judge), not the judge model for review and meta",
    )
    args = ap.parse_args(argv)
    state: Path = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)  # the private PostgreSQL runs as 'postgres' when we are root

    servers: list[LlamaServer] = []
    cluster: PgCluster | None = None
    children: list[subprocess.Popen] = []
    try:
        for role, opts in server_plan(tiny=args.tiny, cpus=os.cpu_count() or 1).items():
            port = ROLE_DEFAULT_PORTS[role]
            if not _port_free(port):
                print(f"local: port {port} (role {role}) is in use; stop what listens there", file=sys.stderr)
                return 1
            kind = opts.pop("model")
            name = "Qwen2.5-Coder-1.5B-Instruct" if kind == "judge" else "SmolLM2-135M"
            print(f"local: starting llama-server ({name}) for role {role} on 127.0.0.1:{port}", flush=True)
            make = judge_server if kind == "judge" else tiny_server
            servers.append(make(role, state / "logs", port=port, **opts).start())  # type: ignore[operator]
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
