"""`ai-sysadmin run` with incidents and the review wired in, then `status` and `review --now`
against the same database: journal file -> triggers -> one incident -> a recorded review ->
proposals through the real ActionService (autonomy suggest: queued, nothing runs)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from ai_sysadmin.config import parse_config
from ai_sysadmin.orchestrator import Orchestrator
from ai_sysadmin.status import gather_status
from ai_sysadmin.store.db import make_pool
from rig.llama import LlamaServer
from rig.net import wait_until
from rig.postgres import PgCluster
from tests.conftest import REPO


def _one(pg: PgCluster, db: str, sql: str):
    with psycopg.connect(pg.conninfo(db)) as conn:
        return conn.execute(sql).fetchone()


async def test_run_status_and_review_now(
    tmp_path: Path, pg_cluster: PgCluster, pg_database: dict, journal_writer, llama_trigger: LlamaServer
) -> None:
    journal = journal_writer.write(
        tmp_path / "journal" / "system.journal",
        [
            {
                "MESSAGE": "Out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:7000000kB",
                "SYSLOG_IDENTIFIER": "kernel",
                "PRIORITY": 3,
                "_TRANSPORT": "kernel",
            },
            {
                "MESSAGE": "tomcat.service: Failed with result 'oom-kill'.",
                "SYSLOG_IDENTIFIER": "systemd",
                "UNIT": "tomcat.service",
                "PRIORITY": 4,
                "_PID": "1",
                "_UID": "0",
                "_SYSTEMD_UNIT": "init.scope",
                "_TRANSPORT": "journal",
            },
        ],
    )
    data = {
        "state_dir": str(tmp_path / "state"),
        # The review role points at a server that is up but is not asked here for speed: the
        # model path has its own tests (test_review_model); this one checks the wiring, so the
        # review runs deterministically (`review.enable = false`) and the status sees the others.
        "roles": {
            "trigger": {"url": llama_trigger.url, "model": llama_trigger.alias},
            "meta": {"enable": False},
            "review": {"enable": False},
        },
        "intervals": {"metrics": 1, "review": 3600},
        "database": pg_database,
        "journal": {"source": "file", "path": str(journal)},
        "trigger": {"model": False, "commit_interval": 0.1, "poll_interval": 0.1},
        "review": {"debounce_seconds": 0.5},  # the critical OOM asks for an early review
        # This machine's own readings must not add incidents of their own (its disk may be full).
        "thresholds": {
            "disk_percent": 100,
            "inode_percent": 100,
            "memory_pressure_avg10": 100,
            "swap_pages_per_s": 1e12,
        },
    }
    cfg = parse_config(data, env={})
    db = pg_database["name"]
    orch = Orchestrator(cfg)
    escalations: list[tuple[int, str]] = []

    async def escalate(incident_id: int, reason: str) -> None:
        escalations.append((incident_id, reason))

    orch.escalate = escalate
    stop = asyncio.Event()
    task = asyncio.create_task(orch.run(stop))
    try:

        def reviewed() -> bool:
            if task.done():
                raise AssertionError(f"service exited early: {task.result()}")
            try:
                return _one(pg_cluster, db, "SELECT count(*) FROM reviews")[0] >= 1
            except psycopg.errors.UndefinedTable:
                return False

        await asyncio.to_thread(wait_until, reviewed, 240, "an early review recorded")
        inc = _one(
            pg_cluster,
            db,
            "SELECT id, category, severity, units, (SELECT count(*) FROM triggers t "
            "WHERE t.incident_id = i.id) FROM incidents i",
        )
        assert inc[1:] == ("oom", "critical", ["tomcat.service"], 2)
        review = _one(pg_cluster, db, "SELECT reason, outcome, prompt_tokens, context_tokens, error FROM reviews")
        assert review[0] == "early" and review[1] == "skipped", review
        # The deterministic candidates went through the real ActionService: recorded, queued (suggest).
        acts = {
            r[0]: r[1]
            for r in psycopg.connect(pg_cluster.conninfo(db)).execute(
                "SELECT action, status FROM actions WHERE incident_id IS NOT NULL"
            )
        }
        assert acts.get("restart_unit") == "queued" and acts.get("notify") == "queued", acts

        pool = make_pool(cfg.database, max_size=1)
        await pool.open(wait=True)
        try:
            st = await gather_status(cfg, pool)
        finally:
            await pool.close()
        assert st["database"]["reachable"] and st["models"]["trigger"]["status"] == "ok"
        assert "review" not in st["models"] and st["pending_approvals"] >= 2
        assert [i["id"] for i in st["open_incidents"]] == [inc[0]]
        assert "zramSwap.enable = true;" in (st["open_incidents"][0]["advice"] or "")
        assert st["last_review"]["reason"] == "early" and st["layers"]["l1"]["last_checkpoint"] is not None
        assert any(d.startswith("last review skipped") for d in st["degraded"]), st["degraded"]
    finally:
        stop.set()
        rc = await asyncio.wait_for(task, 60)
    assert rc == 0
    assert (tmp_path / "state" / "review" / "context-window.json").exists()

    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(data))
    env = {**os.environ, "AI_SYSADMIN_CONFIG": str(cfg_file)}
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "status", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["open_incidents"][0]["category"] == "oom" and st["pending_approvals"] is not None
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "status"], capture_output=True, text=True, timeout=120, env=env, cwd=REPO
    )
    assert r.returncode == 0 and "open incidents: 1" in r.stdout and "advice (NixOS, not applied)" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "review", "--now", "--no-model", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    now = json.loads(r.stdout)
    assert now["outcome"] == "skipped" and now["incidents"] == [inc[0]]
    assert _one(pg_cluster, db, "SELECT count(*) FROM reviews")[0] == 2
    assert "Traceback" not in r.stderr
