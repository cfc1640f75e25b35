"""Shared by the hostile-input tests: a real `ai-sysadmin run` against real journal files and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg

from ai_sysadmin.trigger.reader import JournalSource, read_lines
from rig.proc import exit_report, spawn_logged

REPO = Path(__file__).resolve().parents[2]


def conninfo(db: dict[str, Any]) -> str:
    return psycopg.conninfo.make_conninfo(
        host=db["socket_dir"], port=db["port"], dbname=db["name"], user=db.get("user")
    )


def stored_position(info: str) -> tuple[str | None, int | None]:
    with psycopg.connect(info) as conn:
        try:
            row = conn.execute("SELECT cursor, checkpoint FROM cursors WHERE stream = 'journal'").fetchone()
        except psycopg.errors.UndefinedTable:
            return None, None
    return (row[0], row[1]) if row else (None, None)


def stored_triggers(info: str) -> list[dict[str, Any]]:
    with psycopg.connect(info) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        try:
            return cur.execute("SELECT * FROM triggers").fetchall()
        except psycopg.errors.UndefinedTable:
            return []


def last_cursor(path: Path) -> str:
    *_, line = read_lines(JournalSource("file", str(path)))
    return json.loads(line)["__CURSOR"]


class Service:
    """`python -m ai_sysadmin run --config ...` in its own session, output into a log file."""

    def __init__(self, cfg: dict[str, Any], tmp_path: Path, name: str = "run"):
        self.cfg_path = tmp_path / f"{name}.json"
        self.cfg_path.write_text(json.dumps(cfg))
        self.log = tmp_path / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        self.proc = spawn_logged(
            [sys.executable, "-m", "ai_sysadmin", "run", "--config", str(self.cfg_path)],
            self.log,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return self

    def dead(self) -> str | None:
        return exit_report(self.proc, self.log)

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
