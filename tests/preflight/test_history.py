"""Preflight's flags from the incident history, on real PostgreSQL and real Nix generations,
through the lean entry point (`ai-sysadmin-preflight --config`, what the pre-switch check runs).

History: an earlier switch (generation 1 -> 2) brought in hello 1.1 and web.service failed
after it (switch_incidents); sshd.service has an open incident.  Switching to a system that
changes web.service and sshd.service and brings hello 1.1 back warns three times, with the
incident ids; a database that is down is a note within the connect timeout, never a failure.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ai_sysadmin.store.db import connect_kwargs
from ai_sysadmin.store.lifecycle import open_store
from tests.conftest import make_config
from tests.preflight.conftest import Generations

REPO = Path(__file__).resolve().parents[2]


def lean(
    gens: Generations,
    tmp: Path,
    database: dict[str, Any] | None,
    new: str,
    current: str,
) -> tuple[int, dict[str, Any], float]:
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp / "state"), **({"database": database} if database else {})}))
    argv = [
        sys.executable,
        "-m",
        "ai_sysadmin.commands.preflight",
        new,
        "--current",
        current,
        "--nix",
        gens.store.nix,
        "--format",
        "json",
        "--config",
        str(cfg),
    ]
    t0 = time.monotonic()
    r = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**gens.store.full_env(), "PYTHONPATH": str(REPO)},
    )
    assert r.stdout.strip(), r.stderr
    return r.returncode, json.loads(r.stdout), time.monotonic() - t0


def by_kind(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in report["flags"] if f["kind"] == kind]


async def seed(tmp: Path, database: dict[str, Any], gens: Generations) -> dict[str, int]:
    cfg = make_config(tmp, database=database)
    store = await open_store(cfg)  # the real migrations
    await store.close()
    with psycopg.connect(cfg.database.conninfo(), **connect_kwargs(cfg.database)) as conn:

        def incident(title: str, status: str, units: list[str]) -> int:
            row = conn.execute(
                "INSERT INTO incidents (title, status, severity, category, units) "
                "VALUES (%s, %s, 'high', 'unit-failure', %s) RETURNING id",
                (title, status, units),
            ).fetchone()
            return int(row[0])  # type: ignore[index]

        web = incident("web.service failed", "resolved", ["web.service"])
        sshd = incident("sshd.service failing", "open", ["sshd.service"])
        incident("quiet.service failing", "open", ["quiet.service"])  # a unit the switch does not change
        preflight = {
            "verdict": "warn",
            "closure": {
                "changes": [
                    {"package": "hello", "kind": "upgrade", "from": ["1.0"], "to": ["1.1"], "size_delta_bytes": 1}
                ]
            },
        }
        sw = conn.execute(
            "INSERT INTO switches (switched_at, from_generation, to_generation, from_path, to_path, "
            "verdict, preflight, touched) VALUES (now() - interval '1 day', 1, 2, %s, %s, 'warn', %s, "
            "%s) RETURNING id",
            (gens.gen1, gens.warn, Jsonb(preflight), ["web.service"]),
        ).fetchone()
        conn.execute(
            "INSERT INTO switch_incidents (incident_id, switch_id, units, failed_at) "
            "VALUES (%s, %s, %s, now() - interval '1 day')",
            (web, sw[0], ["web.service"]),
        )  # type: ignore[index]
    return {"web": web, "sshd": sshd}


async def test_history_flags_from_real_postgres(
    tmp_path: Path, pg_database: dict[str, Any], generations: Generations
) -> None:
    ids = await seed(tmp_path, pg_database, generations)
    rc, rep, _ = lean(generations, tmp_path, pg_database, generations.warn, generations.gen1)
    assert rc == 1 and rep["verdict"] == "warn"
    (opened,) = by_kind(rep, "open-incident")
    assert opened["severity"] == "warn" and opened["evidence"] == {
        "unit": "sshd.service",
        "incident_ids": [ids["sshd"]],
    }
    (again,) = by_kind(rep, "failed-after-switch")
    assert again["evidence"]["unit"] == "web.service" and again["evidence"]["incident_ids"] == [ids["web"]]
    assert "generation 1 → 2" in again["message"]
    (pkg,) = by_kind(rep, "failed-package-returns")
    assert (pkg["evidence"]["package"], pkg["evidence"]["version"]) == ("hello", "1.1")
    assert pkg["evidence"]["incident_ids"] == [ids["web"]]
    assert any("hello 1.1 comes back" in r for r in rep["reasons"])
    assert not by_kind(rep, "history-unchecked")
    # The incident as an investigation reads it says whether a switch is blamed (its rollback is then supported).
    from ai_sysadmin.config import parse_config
    from ai_sysadmin.store.db import make_pool
    from ai_sysadmin.store.incidents import IncidentStore

    pool = make_pool(parse_config({"database": pg_database}, env={}).database, max_size=2)
    await pool.open(wait=True, timeout=30)
    try:
        store = IncidentStore(pool)
        assert (await store.show(ids["web"]))["switched"] is True  # type: ignore[index]
        assert (await store.show(ids["sshd"]))["switched"] is False  # type: ignore[index]
    finally:
        await pool.close()

    # Only web.service changes, hello stays at 1.0: no open-incident or package flag, the web one stays.
    rc, rep, _ = lean(generations, tmp_path, pg_database, generations.ok, generations.gen1)
    assert [f["kind"] for f in rep["flags"] if f["severity"] == "warn"] == ["failed-after-switch"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_down_or_absent_is_a_note(tmp_path: Path, generations: Generations) -> None:
    # A TCP address where nothing listens: refused at once; the verdict is the deterministic one.
    down = {"host": "127.0.0.1", "port": free_port(), "name": "none", "user": "none"}
    rc, rep, took = lean(generations, tmp_path, down, generations.ok, generations.gen1)
    assert (rc, rep["verdict"]) == (0, "ok")
    (note,) = by_kind(rep, "history-unchecked")
    assert note["severity"] == "info" and note["message"].startswith("incident history not checked: PostgreSQL:")
    assert took < 15
    # No socket at all: not configured, said so; psycopg never imported (the lean entry stays lean).
    absent = {"socket_dir": str(tmp_path / "nosock"), "port": 5432, "name": "none"}
    rc, rep, _ = lean(generations, tmp_path, absent, generations.ok, generations.gen1)
    (note,) = by_kind(rep, "history-unchecked")
    assert "no PostgreSQL socket at" in note["message"] and rc == 0
    probe = (
        "import sys; from ai_sysadmin.commands.preflight import main; rc = main(sys.argv[1:]); "
        "print('psycopg imported:', 'psycopg' in sys.modules, file=sys.stderr)"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            probe,
            generations.ok,
            "--current",
            generations.gen1,
            "--nix",
            generations.store.nix,
            "--config",
            str(tmp_path / "config.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**generations.store.full_env(), "PYTHONPATH": str(REPO)},
    )
    assert "psycopg imported: False" in r.stderr, r.stderr
