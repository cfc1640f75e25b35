"""The rig's own promises: private PostgreSQL, metrics on llama-server, faithful journal files."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

import psutil
import psycopg

from rig.llama import LlamaServer
from rig.postgres import PgCluster


def test_pg_cluster_is_private_and_unix_socket_only(pg_cluster: PgCluster) -> None:
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()[0]
        sockets = conn.execute("SHOW unix_socket_directories").fetchone()[0]
    assert listen == ""  # no TCP port opened
    assert sockets == str(pg_cluster.sockdir)  # not the system's /run/postgresql


def test_llama_server_exposes_alias_and_metrics(llama_trigger: LlamaServer) -> None:
    with urllib.request.urlopen(f"{llama_trigger.url}/v1/models", timeout=5) as r:
        ids = [m["id"] for m in json.load(r)["data"]]
    with urllib.request.urlopen(f"{llama_trigger.url}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert ids == ["trigger"]
    assert "llamacpp:" in metrics
    # What the process really listens on, not what we asked for: loopback only.
    assert llama_trigger.proc is not None
    listening = {
        c.laddr
        for c in psutil.Process(llama_trigger.proc.pid).net_connections("inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", llama_trigger.port)}


def test_journal_writer_round_trips_through_journalctl(tmp_path: Path, journal_writer) -> None:
    big = "A" * (100 * 1024)
    path = journal_writer.write(
        tmp_path / "t.journal",
        [
            {
                "MESSAGE": "nginx.service: Failed with result 'exit-code'.",
                "_SYSTEMD_UNIT": "init.scope",
                "UNIT": "nginx.service",
                "PRIORITY": 3,
            },
            {"MESSAGE": b"bad \xff utf8", "SYSLOG_IDENTIFIER": "x"},
            {"MESSAGE": big},
            {"MESSAGE": "two\nlines", "PRIORITY": None},
        ],
        boot_id="0" * 32,
    )
    journal_writer.write(path, [{"MESSAGE": "appended later"}], boot_id="0" * 32)
    out = subprocess.run(
        ["journalctl", "--file", str(path), "-o", "json", "--all", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    entries = [json.loads(line) for line in out]
    assert [e.get("UNIT") for e in entries][:1] == ["nginx.service"]
    assert entries[0]["PRIORITY"] == "3"
    assert entries[1]["MESSAGE"] == list(b"bad \xff utf8")  # binary stays a byte array
    assert entries[2]["MESSAGE"] == big
    assert entries[3]["MESSAGE"] == "two\nlines"
    assert "PRIORITY" not in entries[3]  # None omits a field the writer would default
    assert entries[4]["MESSAGE"] == "appended later"
    assert all(e["_BOOT_ID"] == "0" * 32 for e in entries)
