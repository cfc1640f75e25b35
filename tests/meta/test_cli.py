"""`ask`, `chat`, `tools list` and `knowledge` as an admin runs them: real processes, real parts, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ai_sysadmin.meta.tools.names import TOOL_NAMES
from rig.net import free_port
from rig.scenarios import load as load_scenario
from tests.meta.conftest import META_CTX, TINY_META

REPO = Path(__file__).resolve().parents[2]


def cli(config: Path, *args: str, stdin: str | None = None, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(config), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
    )


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **data}))
    return path


def meta_role(server) -> dict[str, Any]:
    return {"url": server.url, "model": server.alias, "timeout": 300, "context_size": META_CTX, "max_retries": 0}


def scenario_journal(journal_writer, tmp_path: Path, name: str) -> Path:
    """A shipped scenario's entries as a real journal file, timestamped the last few minutes."""
    sc = load_scenario(name)
    start = int(time.time() * 1_000_000) - 300_000_000
    entries = [
        {
            **{k: v for k, v in e.items() if k != "t"},
            "__REALTIME_TIMESTAMP": start + int(float(e.get("t", i)) * 1_000_000),
        }
        for i, e in enumerate(sc["entries"])
    ]
    return journal_writer.write(tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.journal", entries)


def assert_one_line_error(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    assert r.stderr.strip().startswith("ai-sysadmin"), r.stderr


def test_ask_end_to_end_on_a_scenario_journal(tmp_path: Path, meta_server, migrated, journal_writer) -> None:
    db, _ = migrated
    journal = scenario_journal(journal_writer, tmp_path, "disk-full")
    config = write_config(
        tmp_path,
        {
            "database": db,
            "journal": {"source": "file", "path": str(journal)},
            "roles": {"meta": meta_role(meta_server)},
            "meta": {**TINY_META, "answer_max_tokens": 32, "max_steps": 2, "tools": ["journal_query", "disk_usage"]},
        },
    )
    r = cli(config, "ask", "Why are writes failing on this host?")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "→ c1 " in out and ("  ✓ c1 " in out or "  ✗ c1 " in out)  # steps as they happen
    assert "\nAnswer: " in out and "Diagnosis (" in out and "root cause: " in out
    assert "stored as finding #" in out
    finding_id = int(out.split("stored as finding #")[1].split(";")[0].split(")")[0])
    shown = cli(config, "incidents", "show", "1")  # no incident: the finding stands alone
    assert "Traceback" not in shown.stderr
    import psycopg

    from ai_sysadmin.config import parse_config

    dbc = parse_config({"database": db}, env={}).database
    with psycopg.connect(dbc.conninfo()) as conn:
        layer, detail = conn.execute("SELECT layer, detail FROM findings WHERE id = %s", (finding_id,)).fetchone()
    assert layer == "meta" and detail["steps"] and detail["diagnosis"]["root_cause"]
    assert detail["question"] == "Why are writes failing on this host?"

    quick = write_config(
        tmp_path, {**json.loads(config.read_text()), "meta": {**TINY_META, "max_steps": 1, "tools": ["disk_usage"]}}
    )
    r = cli(quick, "ask", "Is the disk full?", "--format", "json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert set(obj) >= {"answer", "diagnosis", "steps", "proposals", "finding_id", "outcome"}
    assert obj["steps"] and obj["steps"][0]["call_id"] == "c1" and obj["finding_id"] > finding_id


def test_ask_with_the_model_down_fails_in_one_line(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "roles": {"meta": {"url": f"http://127.0.0.1:{free_port()}", "max_retries": 0}},
            "database": {"host": "127.0.0.1", "port": free_port()},
            "meta": {"tools": ["disk_usage"]},
        },
    )
    r = cli(config, "ask", "why?")
    assert r.returncode == 1
    assert "PostgreSQL unreachable" in r.stderr and "the investigation failed" in r.stderr
    assert "Traceback" not in r.stderr
    r = cli(config, "ask", "   ")
    assert r.returncode == 2 and "question is empty" in r.stderr


def test_tools_list_prints_the_catalog(tmp_path: Path) -> None:
    config = write_config(tmp_path, {})
    r = cli(config, "tools", "list", "--format", "json")
    assert r.returncode == 0, r.stderr
    catalog = json.loads(r.stdout)
    assert [t["name"] for t in catalog["tools"]] == list(TOOL_NAMES)
    assert all(t["parameters"]["type"] == "object" for t in catalog["tools"])
    text = cli(config, "tools", "list").stdout
    assert "journal_query" in text and "propose_action         propose" in text


def test_chat_session_with_commands(tmp_path: Path, meta_server, migrated) -> None:
    db, _ = migrated
    config = write_config(
        tmp_path,
        {
            "database": db,
            "roles": {"meta": meta_role(meta_server)},
            "meta": {**TINY_META, "max_steps": 1, "tools": ["disk_usage"]},
        },
    )
    script = "/help\n/actions\n/approve 1 0123abcd\n/approve 1\n/incident 99\nIs a disk full?\n/nope\n/quit\n"
    r = cli(config, "chat", stdin=script)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "commands: /incident ID" in out
    assert "no pending actions" in out
    assert "cannot approve: actions.approval_key_file is not set" in out  # approval needs the key
    assert "usage: /approve ID" in out and "no incident 99" in out
    assert "→ c1 disk_usage" in out and "Diagnosis (" in out
    assert "unknown command /nope" in out
    assert "Traceback" not in out + r.stderr


def test_knowledge_cli_never_tracebacks(tmp_path: Path, llama_embed) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    up = write_config(
        tmp_path, {"roles": {"embed": {"url": llama_embed.url, "model": llama_embed.alias, "timeout": 300}}}
    )
    r = cli(up, "knowledge", "search", "")
    assert r.returncode == 2 and "search text is empty" in r.stderr
    assert_one_line_error(r)
    r = cli(up, "knowledge", "note", "backup.service fills /var/backups every Sunday; expected", "--incident", "7")
    assert r.returncode == 0 and r.stdout.startswith("saved notes/note-"), r.stderr
    r = cli(up, "knowledge", "search", "why is /var/backups full", "--collection", "notes", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["collection"] == "notes" and hits[0]["vector_rank"] == 1 and hits[0]["lexical_rank"] == 1
    # The embedding model down: search still answers from words (the index persisted), a note is refused cleanly.
    down = write_config(tmp_path, {"roles": {"embed": {"url": dead, "max_retries": 0}}})
    r = cli(down, "knowledge", "search", "backup.service /var/backups", "--json")  # runbooks cannot be indexed
    assert r.returncode == 0, r.stderr
    assert "lexical ranking only" in r.stderr and "Traceback" not in r.stderr
    hits = json.loads(r.stdout)
    assert hits[0]["collection"] == "notes" and hits[0]["metadata"]["incident_id"] == 7
    assert hits[0]["vector_rank"] is None
    r = cli(down, "knowledge", "note", "x")
    assert r.returncode == 1 and "the note was not saved" in r.stderr
    assert_one_line_error(r)
    r = cli(down, "knowledge", "note", "  ")
    assert r.returncode == 2 and "note is empty" in r.stderr
