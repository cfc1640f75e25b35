"""`ai-sysadmin doctor`: check every configured part, one line each, with the fix.

Exit status 0 only when every required part is fine, so the command can gate a
deployment (`ExecStartPre=`, a CI job, or an admin's first look after a rebuild).

Read-only: doctor creates nothing and deletes nothing -- not the state directory, not
the knowledge base, not a spool segment.  What is missing is reported, with the fix.
"""

from __future__ import annotations

import asyncio
import functools
import grp
import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

import httpx

from ai_sysadmin.config import Config, RoleConfig
from ai_sysadmin.statedir import room

CHECK_TIMEOUT = 15.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # ok | fail | warn
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.status == "fail" and self.required

    def line(self) -> str:
        mark = {"ok": "ok  ", "fail": "FAIL", "warn": "warn"}[self.status]
        text = f"{mark}  {self.name}: {self.detail}"
        if self.fix and self.status != "ok":
            text += f" -- fix: {self.fix}"
        return text


# ----------------------------------------------------------------------------- checks


async def check_role(role: RoleConfig) -> CheckResult:
    from ai_sysadmin.llm import LLMClient, LLMError

    name = f"role {role.name}"
    unit = f"llama-{role.name}.service"
    async with LLMClient(role) as client:
        health = await client.health()
        if health.status in ("unavailable", "error"):
            return CheckResult(
                name,
                "fail",
                f"{role.url} {health.status}: {health.detail}",
                f"start {unit} (systemctl status {unit}) or correct roles.{role.name}.url",
            )
        if health.status == "loading":
            return CheckResult(
                name,
                "fail",
                f"{role.url} is still loading its model",
                f"wait for {unit} to finish loading (journalctl -u {unit})",
            )
        try:
            models = await client.served_models()
        except LLMError as exc:
            return CheckResult(name, "fail", f"{role.url} healthy but /v1/models failed: {exc}", f"check {unit} logs")
    if role.model not in models:
        return CheckResult(
            name,
            "fail",
            f"{role.url} serves {models}, not {role.model!r}",
            f"start llama-server with --alias {role.model} or set roles.{role.name}.model",
        )
    note = "" if health.status == "ok" else " (no /health: not llama-server)"
    return CheckResult(name, "ok", f"{role.url} healthy, serves {role.model!r}{note}")


async def check_database(cfg: Config) -> CheckResult:
    import psycopg

    from ai_sysadmin.store.db import connect_kwargs, schema_version, server_version

    db = cfg.database
    where = db.dsn or f"{db.host or db.socket_dir} port {db.port} db {db.name}"
    try:
        conn = await psycopg.AsyncConnection.connect(db.conninfo(), autocommit=True, **connect_kwargs(db, 5))
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else exc.__class__.__name__
        spool = _spool_state(cfg)
        held = f"; outage spool holds {spool.describe()}" if spool is not None and spool.records else ""
        return CheckResult(
            "database",
            "fail",
            f"{where}: {first}{held}",
            "start postgresql.service, or correct the database section "
            "(NixOS: services.ai-sysadmin.database.createLocally)",
        )
    from ai_sysadmin.store.migrations import latest_version, metrics_backend, timescale_edition

    async with conn:
        version = await server_version(conn)
        schema = await schema_version(conn)
        backend = await metrics_backend(conn)
        edition = await timescale_edition(conn) if backend == "timescaledb" else None
    latest = latest_version()
    if not schema:
        state = f"schema not migrated yet (v{latest} is applied when the service starts)"
    elif schema < latest:
        state = f"schema v{schema}, v{latest} pending (applied when the service starts)"
    else:
        state = f"schema v{schema} (latest)"
    if backend:
        # Which TimescaleDB edition is active matters: only the TSL build compresses.
        kind = {
            "apache": "TimescaleDB (Apache edition) hypertable, no compression",
            "timescale": "TimescaleDB (TSL edition) hypertable, compressed after 2 days",
        }.get(edition or "", "TimescaleDB hypertable")
        state += f", metrics in {kind if backend == 'timescaledb' else 'plain PostgreSQL native daily partitions'}"
    spool = _spool_state(cfg)
    if spool is not None and spool.records:
        status = "warn" if spool.warning else "ok"
        return CheckResult(
            "database",
            status,
            f"PostgreSQL {version} at {where}, {state}; outage spool holds {spool.describe()}",
            "the service flushes it while running; keep it running",
            required=status != "warn",
        )
    return CheckResult("database", "ok", f"PostgreSQL {version} at {where}, {state}")


def _spool_state(cfg: Config):
    """The outage spool's fill, read from its directory without touching it (None when there is none)."""
    from ai_sysadmin.store.spool import read_state

    return read_state(cfg.spool.directory(cfg.state_dir), cfg.spool.max_bytes, cfg.spool.warn_ratio)


def _journal_argv(cfg: Config) -> list[str]:
    argv = ["journalctl", "--no-pager", "-q", "-n", "1", "-o", "json"]
    if cfg.journal.source == "directory":
        argv += ["--directory", cfg.journal.path or ""]
    elif cfg.journal.source == "file":
        argv += ["--file", cfg.journal.path or ""]
    return argv


async def check_journal(cfg: Config) -> CheckResult:
    src = cfg.journal.source
    name = "journal"
    if src == "system" and os.geteuid() != 0:
        groups = {grp.getgrgid(g).gr_name for g in os.getgroups() if _gid_exists(g)}
        if not groups & {"systemd-journal", "adm", "wheel"}:
            return CheckResult(
                name,
                "fail",
                "this user cannot read the system journal",
                "add the service user to group systemd-journal (NixOS module: SupplementaryGroups=systemd-journal)",
            )
    if src != "system" and not os.path.exists(cfg.journal.path or ""):
        return CheckResult(name, "fail", f"journal.path {cfg.journal.path} does not exist", "correct journal.path")
    try:
        r = await asyncio.to_thread(
            subprocess.run, _journal_argv(cfg), capture_output=True, text=True, timeout=CHECK_TIMEOUT
        )
    except FileNotFoundError:
        return CheckResult(name, "fail", "journalctl not found", "install systemd's journalctl")
    if r.returncode != 0:
        msg = (r.stderr.strip().splitlines() or ["failed"])[-1]
        return CheckResult(name, "fail", f"journalctl ({src}) failed: {msg}", "check journal.source / journal.path")
    if not r.stdout.strip():
        return CheckResult(name, "warn", f"journal ({src}) readable but empty", required=False)
    return CheckResult(name, "ok", f"{src} journal readable" + (f" at {cfg.journal.path}" if cfg.journal.path else ""))


def _gid_exists(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
        return True
    except KeyError:
        return False


async def check_state_dir(cfg: Config) -> CheckResult:
    path = cfg.state_dir
    if not os.path.isdir(path):
        parent = _existing_parent(path)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            return CheckResult(
                "state dir",
                "fail",
                f"{path} does not exist and cannot be created by this user",
                "create it for the service user (NixOS: StateDirectory=ai-sysadmin) or set state_dir",
            )
        return CheckResult(
            "state dir",
            "warn",
            f"{path} does not exist yet (the service creates it at start)",
            "start the service once, or create it",
            required=False,
        )
    if not os.access(path, os.W_OK | os.X_OK):
        return CheckResult(
            "state dir",
            "fail",
            f"{path} not writable by this user",
            "fix ownership or set state_dir (NixOS: StateDirectory=ai-sysadmin)",
        )
    space = room(path)
    if space is not None and space.full:
        return CheckResult(
            "state dir",
            "fail",
            f"{path} writable but FULL ({space.describe()}): L1 checkpoints, "
            "the spool and the quarantine cannot be written",
            "free space on that filesystem (nix-collect-garbage, journalctl --vacuum-size) or move state_dir",
        )
    return CheckResult("state dir", "ok", f"{path} writable" + (f", {space.describe()}" if space else ""))


def _existing_parent(path: str) -> str | None:
    p = os.path.dirname(os.path.abspath(path))
    while p and not os.path.isdir(p):
        if p == os.path.dirname(p):
            return None
        p = os.path.dirname(p)
    return p or None


async def check_quarantine(cfg: Config) -> CheckResult:
    """Records PostgreSQL refused (kept aside so they never block L1 or the spool)."""
    from ai_sysadmin.store.quarantine import directory, read_state

    where = directory(cfg.state_dir)
    st = read_state(where)
    if not st.records:
        return CheckResult("quarantine", "ok", "no quarantined records")
    return CheckResult(
        "quarantine",
        "warn",
        f"{st.describe()} ({where}/records.jsonl)",
        "read the reason; the records are kept as JSON and can be re-inserted by hand",
        required=False,
    )


async def check_knowledge(cfg: Config) -> CheckResult:
    kb = cfg.knowledge
    if kb.url:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=1.0)) as http:
            for path in ("/api/v2/heartbeat", "/api/v1/heartbeat"):
                try:
                    r = await http.get(kb.url.rstrip("/") + path)
                except httpx.HTTPError as exc:
                    return CheckResult(
                        "knowledge",
                        "fail",
                        f"ChromaDB at {kb.url} unreachable: {exc}",
                        "start chromadb.service or correct knowledge.url",
                    )
                if r.status_code == 200:
                    return CheckResult("knowledge", "ok", f"ChromaDB server at {kb.url} answers")
        return CheckResult(
            "knowledge", "fail", f"{kb.url} is not a ChromaDB server (HTTP {r.status_code})", "correct knowledge.url"
        )
    if kb.path is None:  # the configuration fills it in from state_dir; a hand-built one may not
        return CheckResult("knowledge", "fail", "neither knowledge.url nor knowledge.path is set", "set knowledge.path")
    if not os.path.isdir(kb.path):
        return CheckResult(
            "knowledge",
            "warn",
            f"embedded ChromaDB at {kb.path} does not exist yet (the service creates it at start)",
            "start the service once",
            required=False,
        )
    if not os.access(kb.path, os.W_OK | os.X_OK):
        return CheckResult("knowledge", "fail", f"{kb.path} not writable", "fix ownership or set knowledge.path")
    db = os.path.join(kb.path, "chroma.sqlite3")
    if not os.path.exists(db):
        return CheckResult(
            "knowledge",
            "warn",
            f"embedded ChromaDB at {kb.path} is empty (filled at start)",
            "start the service once",
            required=False,
        )

    def count_collections() -> int:
        import sqlite3

        # Read-only and without chromadb: opening a PersistentClient writes (migrations, locks).
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM collections").fetchone()[0])
        finally:
            conn.close()

    try:
        n = await asyncio.to_thread(count_collections)
    except Exception as exc:  # sqlite3.DatabaseError and friends: all mean "cannot use it"
        return CheckResult(
            "knowledge",
            "fail",
            f"embedded ChromaDB at {kb.path} cannot be read: {exc}",
            "move the damaged directory aside; it is rebuilt at start",
        )
    return CheckResult("knowledge", "ok", f"embedded ChromaDB at {kb.path} ({n} collections)")


# ----------------------------------------------------------------------------- runner


async def _bounded(name: str, coro: Awaitable[CheckResult]) -> CheckResult:
    try:
        return await asyncio.wait_for(coro, CHECK_TIMEOUT)
    except TimeoutError:
        return CheckResult(name, "fail", f"no answer within {CHECK_TIMEOUT:g}s", "see the part's logs")
    except Exception as exc:  # a crashing check is a failed check, never a crashed doctor
        return CheckResult(name, "fail", f"check crashed: {exc.__class__.__name__}: {exc}")


def planned_checks(cfg: Config) -> list[tuple[str, Callable[[], Awaitable[CheckResult]]]]:
    checks: list[tuple[str, Callable[[], Awaitable[CheckResult]]]] = []
    for role in cfg.roles.enabled():
        checks.append((f"role {role.name}", functools.partial(check_role, role)))
    checks += [
        ("database", lambda: check_database(cfg)),
        ("journal", lambda: check_journal(cfg)),
        ("state dir", lambda: check_state_dir(cfg)),
        ("knowledge", lambda: check_knowledge(cfg)),
        ("quarantine", lambda: check_quarantine(cfg)),
    ]
    return checks


async def run_checks(cfg: Config) -> list[CheckResult]:
    planned = planned_checks(cfg)
    return list(await asyncio.gather(*(_bounded(n, make()) for n, make in planned)))


def report(results: list[CheckResult], as_json: bool = False) -> str:
    if as_json:
        return json.dumps([asdict(r) for r in results], indent=2)
    return "\n".join(r.line() for r in results)


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.failed for r in results) else 0
