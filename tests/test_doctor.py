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
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(f), "doctor", *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def lines_by_check(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        status, rest = line[:4].strip(), line[6:]  # "ok  " / "FAIL" / "warn", two spaces, text
        found[rest.split(":", 1)[0]] = f"{status}|{rest}"
    return found


def roles_for(servers: dict[str, LlamaServer]) -> dict[str, Any]:
    return {name: {"url": s.url, "model": s.alias} for name, s in servers.items()}


def test_all_parts_running(
    tmp_path: Path,
    llama_trigger: LlamaServer,
    llama_review: LlamaServer,
    llama_meta: LlamaServer,
    pg_database: dict,
    journal_writer,
) -> None:
    journal = journal_writer.write(tmp_path / "journal" / "system.journal", [{"MESSAGE": "hello"}])
    (tmp_path / "state").mkdir()
    r = doctor(
        tmp_path,
        {
            "roles": roles_for({"trigger": llama_trigger, "review": llama_review, "meta": llama_meta}),
            "database": pg_database,
            "journal": {"source": "file", "path": str(journal)},
        },
    )
    assert r.returncode == 0, r.stdout + r.stderr
    checks = lines_by_check(r.stdout)
    assert set(checks) == {
        "role trigger",
        "role review",
        "role meta",
        "database",
        "journal",
        "state dir",
        "knowledge",
        "quarantine",
    }
    assert all(v.startswith("ok|") for k, v in checks.items() if k != "knowledge"), r.stdout
    assert "serves 'review'" in checks["role review"]
    assert "PostgreSQL 1" in checks["database"]
    # Read-only: the missing knowledge base is reported, not created.
    assert checks["knowledge"].startswith("warn|") and "does not exist yet" in checks["knowledge"]
    assert not (tmp_path / "state" / "knowledge").exists()


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(root.rglob("*"))}


def test_doctor_creates_and_deletes_nothing(tmp_path: Path, private_pg_cluster: PgCluster) -> None:
    """A missing state dir, a spool with an empty and a torn segment, a quarantined record: reported, untouched."""
    cluster = private_pg_cluster
    cluster.create_database("aisys")
    config = {
        "roles": {"trigger": {"enable": False}, "review": {"enable": False}, "meta": {"enable": False}},
        "database": cluster.database_config("aisys"),
        "journal": {"source": "file", "path": str(tmp_path)},
    }
    r = doctor(tmp_path, config)
    checks = lines_by_check(r.stdout)
    assert checks["state dir"].startswith("warn|") and "does not exist yet" in checks["state dir"], r.stdout
    assert not (tmp_path / "state").exists()

    spool = tmp_path / "state" / "spool"
    spool.mkdir(parents=True)
    (spool / "000000000001-events.jsonl").write_bytes(b"")  # the service's Spool would delete this
    (spool / "000000000002-events.jsonl").write_bytes(
        b'{"id":"8d0e0d4e-2b4b-4fb4-9d1e-7c1b4a0d3f10","kind":"audit","payload":{}}\n{"id":"torn'
    )
    q = tmp_path / "state" / "quarantine"
    q.mkdir()
    (q / "records.jsonl").write_text(
        json.dumps(
            {"at": "2026-01-01T00:00:00+00:00", "kind": "trigger", "reason": "CheckViolation: count", "record": {}}
        )
        + "\n"
    )
    cluster.stop()  # database down: the spool is shown in the database line
    before = tree(tmp_path / "state")
    r = doctor(tmp_path, config, "--json")
    assert tree(tmp_path / "state") == before  # nothing created, repaired or deleted
    results = {c["name"]: c for c in json.loads(r.stdout)}
    assert results["quarantine"]["status"] == "warn" and "1 quarantined record" in results["quarantine"]["detail"]
    assert "CheckViolation" in results["quarantine"]["detail"]
    assert "outage spool holds 2 batch(es)" in results["database"]["detail"], results["database"]


def test_stopped_parts_fail_with_a_fix(
    tmp_path: Path, llama_trigger: LlamaServer, journal_writer, private_pg_cluster: PgCluster
) -> None:
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
    assert results["state dir"]["status"] == "warn"  # not there yet: reported, not created


def test_wrong_model_alias_and_missing_journal(tmp_path: Path, llama_trigger: LlamaServer, pg_database: dict) -> None:
    r = doctor(
        tmp_path,
        {
            "roles": {
                "trigger": {"url": llama_trigger.url, "model": "qwen2.5-1.5b"},
                "review": {"enable": False},
                "meta": {"enable": False},
            },
            "database": pg_database,
            "journal": {"source": "directory", "path": str(tmp_path / "no-such-dir")},
        },
    )
    assert r.returncode == 1
    checks = lines_by_check(r.stdout)
    assert checks["role trigger"].startswith("FAIL|")
    assert "--alias qwen2.5-1.5b" in checks["role trigger"]
    assert checks["journal"].startswith("FAIL|") and "journal.path" in checks["journal"]
    assert checks["database"].startswith("ok|")


def test_full_state_dir_is_reported_by_doctor_and_status(tmp_path: Path, pg_database: dict) -> None:
    """A writable but full state dir (a 1 MiB tmpfs): doctor fails it, status lists it as degraded."""
    from rig.require import need

    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(state)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        need(f"mounting a 1 MiB tmpfs needs root: {mounted.stderr.strip()}")
    try:
        config = {
            "roles": {"trigger": {"enable": False}, "review": {"enable": False}, "meta": {"enable": False}},
            "database": pg_database,
            "journal": {"source": "file", "path": str(tmp_path)},
        }
        r = doctor(tmp_path, config, "--json")
        results = {c["name"]: c for c in json.loads(r.stdout)}
        assert results["state dir"]["status"] == "fail", results["state dir"]
        assert "FULL" in results["state dir"]["detail"] and "MiB free" in results["state dir"]["detail"]
        assert r.returncode == 1
        f = tmp_path / "config.json"
        st = subprocess.run(
            [sys.executable, "-m", "ai_sysadmin", "--config", str(f), "status", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ.copy(),
        )
        degraded = json.loads(st.stdout)["degraded"]
        assert any(d.startswith("state dir full") for d in degraded), degraded
    finally:
        subprocess.run(["umount", str(state)], check=True)
