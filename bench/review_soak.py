"""Orchestrator RSS under a replayed soak: `ai-sysadmin run` with incidents and review wired in.

    python -m bench.review_soak [--minutes 10] [--rate 1000]

Starts a throwaway PostgreSQL cluster and the real service (`python -m ai_sysadmin run`,
journal.source = file, no model servers: the review runs its deterministic part every
60 s, early on critical triggers).  Every second it appends `--rate` entries (a mix of
noise and faults with varying numbers: unit failures over 37 units, OOM kills, ENOSPC,
SSH failures) to the journal file with systemd-journal-remote.  Prints the service's
RSS (psutil, the orchestrator process alone) after start and every minute, and the
incidents / reviews / triggers it recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

from rig.journal import JournalWriter
from rig.postgres import PgCluster

REPO = Path(__file__).resolve().parent.parent

LINES = [
    ("kernel", None, 6, "eth0: link up, 1000Mbps {n}"),
    ("nginx", "nginx.service", 6, "GET /api/{n} 200 {m}ms"),
    ("myapp", "myapp.service", 3, "request {n} failed: connection refused"),
    ("sshd", "sshd.service", 6, "Failed password for root from 203.0.113.{m} port {n} ssh2"),
    ("systemd", "unit{m}.service", 4, "unit{m}.service: Failed with result 'exit-code'."),
    ("kernel", None, 3, "Out of memory: Killed process {n} (worker{m})"),
    ("postgres", "postgresql.service", 4, "could not write block {n}: No space left on device"),
    ("cron", "cron.service", 6, "(root) CMD (run-parts /etc/cron.hourly) {n}"),
]


def batch(start: int, n: int) -> list[dict]:
    out = []
    for i in range(start, start + n):
        ident, unit, prio, text = LINES[i % len(LINES)]
        m = (i // len(LINES)) % 37
        e = {"MESSAGE": text.format(n=i, m=m), "PRIORITY": prio, "SYSLOG_IDENTIFIER": ident}
        if unit:
            e["UNIT" if ident == "systemd" else "_SYSTEMD_UNIT"] = unit.format(m=m)
        out.append(e)
    return out


def rss(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="ai-sysadmin-soak-"))
    pg = PgCluster.create()
    pg.start()
    db = f"soak_{uuid.uuid4().hex[:8]}"
    pg.create_database(db)
    writer = JournalWriter()
    journal = work / "journal" / "system.journal"
    writer.write(journal, batch(0, 10))
    cfg = {
        "state_dir": str(work / "state"),
        "database": pg.database_config(db),
        "roles": {"trigger": {"enable": False}, "review": {"enable": False}, "meta": {"enable": False}},
        "journal": {"source": "file", "path": str(journal)},
        "intervals": {"metrics": 30, "review": 60},
        "trigger": {"model": False},
    }
    (work / "config.json").write_text(json.dumps(cfg))
    env = {**os.environ, "AI_SYSADMIN_CONFIG": str(work / "config.json")}
    # The service gets its own copy of the descriptor; ours is closed once it has started.
    with open(work / "service.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ai_sysadmin", "run"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(pg.conninfo(db)) as conn:
                if conn.execute("SELECT to_regclass('reviews') IS NOT NULL").fetchone()[0]:
                    break
            time.sleep(0.5)
        time.sleep(5)  # settle: imports done, first metrics round
        print(f"RSS after start: {rss(proc.pid):.1f} MiB", flush=True)
        start = time.monotonic()
        n = 10
        next_report = start + 60
        while time.monotonic() - start < args.minutes * 60:
            t = time.monotonic()
            writer.write(journal, batch(n, int(args.rate)))
            n += int(args.rate)
            if proc.poll() is not None:
                raise SystemExit(f"service exited ({proc.returncode}); see {work / 'service.log'}")
            if time.monotonic() >= next_report:
                with psycopg.connect(pg.conninfo(db)) as conn:
                    inc, rev, trig = conn.execute(
                        "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM reviews), "
                        "(SELECT coalesce(sum(count), 0) FROM triggers)"
                    ).fetchone()
                print(
                    f"{(time.monotonic() - start) / 60:.0f} min: {n} entries written, RSS {rss(proc.pid):.1f} MiB, "
                    f"incidents {inc}, reviews {rev}, trigger occurrences {trig}",
                    flush=True,
                )
                next_report += 60
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
        time.sleep(3)
        print(f"end: {n} entries in {args.minutes:g} min, RSS {rss(proc.pid):.1f} MiB", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        pg.destroy()
        print(f"service log: {work / 'service.log'}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    main(ap.parse_args())
