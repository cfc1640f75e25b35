"""`ai-sysadmin incidents` and `ai-sysadmin knowledge search` as an admin runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ai_sysadmin.store.lifecycle import open_store
from rig.triggers import make_trigger
from tests.conftest import copy_of, make_config


def cli(tmp_path: Path, config: dict[str, Any], *argv: str) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **config}))
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(f), *argv],
        capture_output=True,
        text=True,
        timeout=400,
        env=os.environ.copy(),
    )


async def test_incidents_list_and_show(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        t = make_trigger(1, count=3)
        await store.triggers.record_triggers([t], "c1")
        iid = await store.incidents.open("nginx keeps failing", "high", "unit-failure", "nginx.service", [t.id])
    finally:
        await store.close()
    r = cli(tmp_path, {"database": pg_database}, "incidents")
    assert r.returncode == 0, r.stderr
    assert f"#{iid}" in r.stdout and "nginx keeps failing" in r.stdout and "(1 trigger(s))" in r.stdout
    r = cli(tmp_path, {"database": pg_database}, "incidents", "show", str(iid))
    assert r.returncode == 0 and "x3 rule:unit-failed" in r.stdout
    r = cli(tmp_path, {"database": pg_database}, "incidents", "show", str(iid + 7))
    assert r.returncode == 1 and f"no incident {iid + 7}" in r.stderr
    r = cli(tmp_path, {"database": pg_database}, "incidents", "show")
    assert r.returncode == 2 and "ID is required" in r.stderr


def test_knowledge_search_finds_a_shipped_runbook(tmp_path: Path, llama_embed, indexed_runbooks: Path) -> None:
    # The runbooks as the service indexed them (tests/store/test_knowledge.py tests the indexing):
    # the command finds them unchanged and embeds only the query.
    copy_of(indexed_runbooks, tmp_path / "state", "knowledge")
    config = {"roles": {"embed": {"url": llama_embed.url, "model": llama_embed.alias, "timeout": 300}}}
    text = (Path(__file__).resolve().parents[2] / "ai_sysadmin/runbooks/ssh-brute-force.md").read_text()
    r = cli(tmp_path, config, "knowledge", "search", text, "-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["id"] == "ssh-brute-force" and hits[0]["collection"] == "runbooks"
    assert hits[0]["score"] >= hits[1]["score"]
    r = cli(tmp_path, {}, "knowledge", "search", "x")
    assert r.returncode == 2 and "configure roles.embed" in r.stderr


async def test_doctor_shows_schema_backend_and_spool(pg_database: dict[str, Any], tmp_path: Path) -> None:
    from ai_sysadmin.doctor import check_database
    from ai_sysadmin.store.spool import Batch, Spool

    cfg = make_config(tmp_path, database=pg_database, spool={"max_bytes": 1048576, "warn_ratio": 0.001})
    assert "schema not migrated yet" in (await check_database(cfg)).detail
    store = await open_store(cfg)
    await store.close()
    result = await check_database(cfg)
    assert result.status == "ok" and "(latest)" in result.detail and "native daily partitions" in result.detail
    Spool(cfg.spool.directory(cfg.state_dir), 1048576).append(Batch("audit", {"pad": "x" * 2000}))
    result = await check_database(cfg)
    assert result.status == "warn" and "outage spool holds 1 batch(es)" in result.detail
