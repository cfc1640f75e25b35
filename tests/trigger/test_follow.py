"""`ai-sysadmin run` follows a real journal file into a real PostgreSQL store; kill -9 loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ai_sysadmin.trigger.reader import JournalSource, read_lines
from rig.journal import JournalWriter
from rig.net import wait_until
from rig.proc import spawn_logged
from tests.trigger.helpers import T0_USEC, entry, replay

REPO = Path(__file__).resolve().parents[2]
WINDOW_USEC = 300_000_000


def batch(k: int, n: int) -> list[dict[str, Any]]:
    """n entries: per unit one rule signature, plus routine noise."""
    out = []
    for i in range(n):
        unit = f"app{i % 7}.service"
        if i % 3 == 0:
            out.append(
                entry(
                    f"worker {i} accept4() failed (24: Too many open files)", ident=f"app{i % 7}", unit=unit, priority=3
                )
            )
        elif i % 3 == 1:
            out.append(
                entry(
                    f"{unit}: Main process exited, code=exited, status=1/FAILURE",
                    ident="systemd",
                    priority=4,
                    UNIT=unit,
                )
            )
        else:
            out.append(entry(f"request {i} served in {i % 50} ms", ident=f"app{i % 7}", unit=unit))
    return out


def last_cursor(path: Path) -> str:
    *_, line = read_lines(JournalSource("file", str(path)))
    return json.loads(line)["__CURSOR"]


def stored_cursor(conninfo: str) -> str | None:
    with psycopg.connect(conninfo) as conn:
        try:
            row = conn.execute("SELECT cursor FROM cursors WHERE stream = 'journal'").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row[0] if row else None


def stored_triggers(conninfo: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        # Journal triggers only: the collector's thresholds depend on this machine's mounts.
        return conn.execute(
            "SELECT id, source, unit, first_seen, count FROM triggers WHERE source NOT LIKE 'threshold:%'"
        ).fetchall()


def start(cfg_path: Path, log: Path) -> subprocess.Popen:
    return spawn_logged([sys.executable, "-m", "ai_sysadmin", "--config", str(cfg_path), "run"], log, cwd=REPO)


@pytest.mark.slow
def test_kill_9_during_follow_then_restart_loses_nothing_and_doubles_nothing(
    pg_database: dict[str, Any], journal_writer: JournalWriter, tmp_path: Path
) -> None:
    jfile = tmp_path / "journal" / "follow.journal"
    journal_writer.write(jfile, batch(0, 3000), start_usec=T0_USEC)
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "database": pg_database,
        "log_level": "info",
        "journal": {"source": "file", "path": str(jfile)},
        "trigger": {"model": False, "commit_interval": 0.05, "burst_min_count": 100000},
        # The entries are dated 2025 (T0_USEC); the service's start-up retention run would
        # otherwise delete their triggers as older than events_days.
        "retention": {"events_days": 0},
    }
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text(json.dumps(cfg))
    conninfo = psycopg.conninfo.make_conninfo(
        host=pg_database["socket_dir"],
        port=pg_database["port"],
        dbname=pg_database["name"],
        user=pg_database.get("user"),
    )
    log = tmp_path / "run.log"
    proc = start(cfg_path, log)
    try:
        wait_until(
            lambda: stored_cursor(conninfo) is not None,
            60,
            "first checkpoint",
            alive=lambda: None if proc.poll() is None else log.read_text(),
        )
        # More entries arrive while it follows (next window), then kill -9 mid-stream.
        journal_writer.write(jfile, batch(1, 6000), start_usec=T0_USEC + WINDOW_USEC)
        first = stored_cursor(conninfo)
        wait_until(lambda: stored_cursor(conninfo) != first, 60, "a checkpoint after the append")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        killed_at = stored_cursor(conninfo)
        assert killed_at != last_cursor(jfile), "killed too late to prove anything"
        # Entries written while the service is down, into the window it was in.
        journal_writer.write(jfile, batch(2, 1500), start_usec=T0_USEC + WINDOW_USEC + 10_000)
        end = last_cursor(jfile)
        proc = start(cfg_path, log)
        wait_until(
            lambda: stored_cursor(conninfo) == end,
            90,
            "catching up to the last entry",
            alive=lambda: None if proc.poll() is None else log.read_text(),
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    # The truth: one uninterrupted replay of the same file.
    _, expected = replay(jfile)
    want = Counter({(t.source, t.unit, t.first_seen.timestamp() // 300): t.count for t in expected})
    rows = stored_triggers(conninfo)
    got: Counter = Counter()
    keys = Counter()
    for _id, source, unit, first_seen, count in rows:
        key = (source, unit, first_seen.timestamp() // 300)
        got[key] += count
        keys[key] += 1
    assert sum(want.values()) == 3000 // 3 * 2 + 6000 // 3 * 2 + 1500 // 3 * 2
    assert got == want  # no entry lost, none counted twice
    assert max(keys.values()) == 1  # one row per (template, unit, window): no duplicate trigger
