"""`ai-sysadmin replay` as an admin runs it: a real journal directory, a JSON export, a syslog file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rig.journal import JournalWriter
from tests.trigger.helpers import T0_USEC, entry

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {"severity", "category", "unit", "source", "template", "count", "first_seen", "last_seen", "sample"}


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "XDG_STATE_HOME": str(cwd / "state")},
    )


def test_replay_a_journal_directory_as_json(journal_writer: JournalWriter, tmp_path: Path) -> None:
    d = tmp_path / "journal"
    journal_writer.write(
        d / "a.journal",
        [
            entry("Out of memory: Killed process 4242 (java) total-vm:1kB", ident="kernel", priority=3),
            entry("Started Daily Cleanup of Temporary Directories.", ident="systemd"),
        ],
        start_usec=T0_USEC,
    )
    journal_writer.write(
        d / "b.journal",
        [entry("nginx.service: Start request repeated too quickly.", ident="systemd", priority=4, UNIT="nginx.service")]
        * 3,
        start_usec=T0_USEC + 1000,
    )
    r = cli("replay", "--no-model", "--format", "json", str(d), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {row["source"] for row in rows} == {"rule:oom-kill", "rule:unit-crashloop"}
    for row in rows:
        assert set(row) >= REQUIRED
    crash = next(row for row in rows if row["source"] == "rule:unit-crashloop")
    assert crash["count"] == 3 and crash["unit"] == "nginx.service" and crash["category"] == "unit-failure"
    assert "5 entries, 0 bad line(s)" in r.stderr and "model: off" in r.stderr
    assert "drain3" not in r.stderr  # no library chatter for the admin


def test_replay_json_export_counts_bad_lines(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    good = {
        "MESSAGE": "EXT4-fs error (device sda1): bad block bitmap",
        "PRIORITY": "2",
        "SYSLOG_IDENTIFIER": "kernel",
        "__REALTIME_TIMESTAMP": str(T0_USEC),
        "__CURSOR": "s=x;i=1",
    }
    export.write_text(json.dumps(good) + "\n{broken\n" + json.dumps(good) + "\n")
    r = cli("replay", "--no-model", str(export), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "line 2: skipped: not JSON" in r.stderr and "2 entries, 1 bad line(s)" in r.stderr
    [line] = r.stdout.splitlines()
    assert "filesystem" in line and "rule:fs-error" in line and "x2" in line


def test_replay_syslog_text(tmp_path: Path) -> None:
    log = tmp_path / "messages"
    log.write_bytes(
        b"Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; rhost=218.188.2.4\n" * 6
        + b"Jun 14 15:16:02 combo kernel: EXT4-fs error (device sda1): \xff\xfe bad\n"
        + b"garbage line without any structure\n"
    )
    r = cli("replay", "--no-model", "--format", "json", str(log), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = {json.loads(line)["source"]: json.loads(line) for line in r.stdout.splitlines()}
    assert rows["rule:auth-failure"]["count"] == 6 and rows["rule:auth-failure"]["unit"] == "sshd"
    assert rows["rule:fs-error"]["unit"] == "kernel"


def test_replay_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    r = cli("replay", "--no-model", str(tmp_path / "nope.log"), cwd=tmp_path)
    assert r.returncode == 2 and "nope.log: no such file or directory" in r.stderr
