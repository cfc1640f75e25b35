"""`ai-sysadmin doctor` against running and stopped real parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rig.llama import LlamaServer
from rig.net import free_port
from rig.postgres import PgCluster


def doctor(tmp_path: Path, config: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **config}))
    return subprocess.run([sys.executable, "-m", "ai_sysadmin", "--config", str(f), "doctor", *extra],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def lines_by_check(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        status, rest = line[:4].strip(), line[6:]  # "ok  " / "FAIL" / "warn", two spaces, text
        found[rest.split(":", 1)[0]] = f"{status}|{rest}"
    return found


def roles_for(servers: dict[str, LlamaServer]) -> dict[str, Any]:
    return {name: {"url": s.url, "model": s.alias} for name, s in servers.items()}


def test_all_parts_running(tmp_path: Path, llama_trigger: LlamaServer, llama_review: LlamaServer,
                           llama_meta: LlamaServer, pg_database: dict, journal_writer) -> None:
    journal = journal_writer.write(tmp_path / "journal" / "system.journal", [{"MESSAGE": "hello"}])
    r = doctor(tmp_path, {
        "roles": roles_for({"trigger": llama_trigger, "review": llama_review, "meta": llama_meta}),
        "database": pg_database,
        "journal": {"source": "file", "path": str(journal)},
    })
    assert r.returncode == 0, r.stdout + r.stderr
    checks = lines_by_check(r.stdout)
    assert set(checks) == {"role trigger", "role review", "role meta", "database", "journal", "state dir", "knowledge"}
    assert all(v.startswith("ok|") for v in checks.values()), r.stdout
    assert "serves 'review'" in checks["role review"]
    assert "PostgreSQL 1" in checks["database"]
    assert (tmp_path / "state" / "knowledge").is_dir()


def test_stopped_parts_fail_with_a_fix(tmp_path: Path, llama_trigger: LlamaServer, journal_writer,
                                      private_pg_cluster: PgCluster) -> None:
    cluster = private_pg_cluster
    cluster.create_database("aisys")
    journal = journal_writer.write(tmp_path / "j" / "system.journal", [{"MESSAGE": "x"}])
    config = {
        "roles": {
            "trigger": {"url": llama_trigger.url, "model": "trigger"},
            "review": {"url": f"http://127.0.0.1:{free_port()}", "model": "review"},  # stopped
            "meta": {"enable": False},
        },
        "database": cluster.database_config("aisys"),
        "journal": {"source": "file", "path": str(journal)},
    }
    before = doctor(tmp_path, config)
    assert lines_by_check(before.stdout)["database"].startswith("ok|"), before.stdout
    cluster.stop()
    r = doctor(tmp_path, config, "--json")
    assert r.returncode == 1
    results = {c["name"]: c for c in json.loads(r.stdout)}
    assert "role meta" not in results  # disabled roles are not checked
    assert results["role trigger"]["status"] == "ok"
    assert results["role review"]["status"] == "fail"
    assert "start llama-review.service" in results["role review"]["fix"]
    assert results["database"]["status"] == "fail"
    assert "postgresql" in results["database"]["fix"]
    assert results["state dir"]["status"] == "ok"


def test_wrong_model_alias_and_missing_journal(tmp_path: Path, llama_trigger: LlamaServer,
                                               pg_database: dict) -> None:
    r = doctor(tmp_path, {
        "roles": {"trigger": {"url": llama_trigger.url, "model": "qwen2.5-1.5b"},
                  "review": {"enable": False}, "meta": {"enable": False}},
        "database": pg_database,
        "journal": {"source": "directory", "path": str(tmp_path / "no-such-dir")},
    })
    assert r.returncode == 1
    checks = lines_by_check(r.stdout)
    assert checks["role trigger"].startswith("FAIL|")
    assert "--alias qwen2.5-1.5b" in checks["role trigger"]
    assert checks["journal"].startswith("FAIL|") and "journal.path" in checks["journal"]
    assert checks["database"].startswith("ok|")
