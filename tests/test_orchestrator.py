"""`ai-sysadmin run` as a whole: L1, the metrics collector and runbook indexing together."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg

from ai_sysadmin.config import parse_config
from ai_sysadmin.orchestrator import Orchestrator
from rig.llama import LlamaServer
from rig.net import wait_until
from rig.postgres import PgCluster


def _count(pg: PgCluster, db: str, sql: str) -> int:
    with psycopg.connect(pg.conninfo(db)) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_run_records_triggers_metrics_and_indexes_runbooks(
    tmp_path: Path, pg_cluster: PgCluster, pg_database: dict, journal_writer, llama_embed: LlamaServer
) -> None:
    journal = journal_writer.write(
        tmp_path / "journal" / "system.journal",
        [
            {
                "MESSAGE": "Out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:7000000kB",
                "SYSLOG_IDENTIFIER": "kernel",
                "PRIORITY": 3,
            },
            {"MESSAGE": "Started Session 3 of User alice.", "_SYSTEMD_UNIT": "systemd-logind.service"},
        ],
    )
    cfg = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "roles": {
                "trigger": {"enable": False},
                "review": {"enable": False},
                "meta": {"enable": False},
                "embed": {"url": llama_embed.url, "model": llama_embed.alias, "timeout": 300},
            },
            "intervals": {"metrics": 0.2},
            "database": pg_database,
            "journal": {"source": "file", "path": str(journal)},
            "trigger": {"model": False, "commit_interval": 0.1, "poll_interval": 0.1},
        },
        env={},
    )
    db = pg_database["name"]
    orch = Orchestrator(cfg)
    stop = asyncio.Event()
    task = asyncio.create_task(orch.run(stop))
    try:

        def ready() -> bool:
            if task.done():
                raise AssertionError(f"service exited early: {task.result()}")
            try:
                oom = _count(pg_cluster, db, "SELECT count(*) FROM triggers WHERE category = 'oom'")
                metrics = _count(pg_cluster, db, "SELECT count(DISTINCT ts) FROM metrics")
            except psycopg.errors.UndefinedTable:
                return False  # not migrated yet
            return oom == 1 and metrics >= 2 and orch.knowledge_ready

        await asyncio.to_thread(wait_until, ready, 120, "triggers, two metric rounds and runbooks")
    finally:
        stop.set()
        rc = await asyncio.wait_for(task, 60)
    assert rc == 0
    names = {r[0] for r in psycopg.connect(pg_cluster.conninfo(db)).execute("SELECT DISTINCT name FROM metrics")}
    assert {"cpu.percent", "mem.percent", "mem.available_bytes", "swap.percent"} <= names, names
    embed_calls = _count(pg_cluster, db, "SELECT count(*) FROM llm_calls WHERE role = 'embed'")
    assert embed_calls >= 1  # runbooks were embedded by the real embedding server, and accounted
