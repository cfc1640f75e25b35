"""Throughput of L1's deterministic path, against only reading and parsing the journal.

Data: loghub 2k samples (https://github.com/logpai/loghub): BGL, HDFS, Linux, OpenSSH,
x N copies.  Copy k > 0 shifts every number in a line (pids, ports, block ids change
in real logs too), so exact-repeat caching does not flatter the figures.  The lines are
written as a real journal file by systemd-journal-remote (MESSAGE, PRIORITY,
SYSLOG_IDENTIFIER, _PID, _COMM, _SYSTEMD_UNIT ...) and read back by journalctl.

    python -m bench.l1_throughput [--copies 25]

Prints entries/s for: journalctl alone; journalctl + JSON parsing (the "read");
read + L1 (templates, rules, bursts, windows; no model); L1 alone on parsed entries
(one core); and the plain-text path on the same lines.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.entry import parse_json_line
from ai_sysadmin.trigger.follower import build_pipeline
from ai_sysadmin.trigger.reader import JournalSource, journalctl_argv, read_lines
from ai_sysadmin.trigger.textparse import TextParser
from rig.journal import JournalWriter

REPO = Path(__file__).resolve().parent.parent

DATA = Path(os.environ.get("LOGHUB_DIR", REPO.parent / "shared" / "datasets" / "loghub"))
SETS = ("BGL", "HDFS", "Linux", "OpenSSH")
_NUM = re.compile(r"\d+")


def loghub_lines() -> list[tuple[str, str]]:
    out = []
    for name in SETS:
        for line in (DATA / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                out.append((name, line.split(" ", 1)[1] if name == "BGL" else line))
    return out


def shifted(line: str, k: int) -> str:
    return line if k == 0 else _NUM.sub(lambda m: str(int(m.group()) + k), line)


def entries_for(lines: list[tuple[str, str]], copies: int) -> tuple[list[dict], list[str]]:
    parser = TextParser()
    entries, texts = [], []
    for k in range(copies):
        for name, line in lines:
            text = shifted(line, k)
            texts.append(text)
            e = parser.parse(text)
            entries.append(
                {
                    "MESSAGE": e.message,
                    "PRIORITY": e.priority if e.priority is not None else 6,
                    "SYSLOG_IDENTIFIER": e.identifier or name.lower(),
                    "_PID": e.pid or str(1000 + k),
                    "_COMM": (e.identifier or name.lower())[:15],
                    "_SYSTEMD_UNIT": f"{name.lower()}.service",
                    "_UID": "0",
                    "_GID": "0",
                    "_TRANSPORT": "syslog",
                    "SYSLOG_FACILITY": "3",
                }
            )
    return entries, texts


def timed(fn) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=25)
    args = ap.parse_args()
    lines = loghub_lines()
    entries, texts = entries_for(lines, args.copies)
    tmp = Path(tempfile.mkdtemp())
    jdir = tmp / "journal"
    jfile = jdir / "loghub.journal"
    t0 = time.perf_counter()
    JournalWriter().write(jfile, entries, start_usec=1_700_000_000_000_000)
    size = sum(f.stat().st_size for f in jdir.iterdir())
    # systemd-journal-remote rotates large outputs into several files: read the directory.
    print(
        f"wrote {len(entries)} entries ({len(lines)} loghub lines x {args.copies}) as real journal files "
        f"({len(list(jdir.iterdir()))} files, {size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s"
    )
    source = JournalSource("directory", str(jdir))
    cfg = parse_config({"state_dir": str(tmp / "state")}, env={})

    def journalctl_only() -> int:
        with open(os.devnull, "wb") as null:
            subprocess.run(journalctl_argv(source), stdout=null, check=True)
        return len(entries)

    def read_parse() -> int:
        return sum(1 for line in read_lines(source) if parse_json_line(line))

    def read_parse_l1() -> int:
        p = build_pipeline(cfg.trigger, state_dir=None, model=None)
        n = 0
        for line in read_lines(source):
            p.process(parse_json_line(line))
            n += 1
        return n

    parsed = [parse_json_line(line) for line in read_lines(source)]
    assert len(parsed) == len(entries), f"read back {len(parsed)} of {len(entries)} entries"

    def l1_only() -> int:
        p = build_pipeline(cfg.trigger, state_dir=None, model=None)
        for e in parsed:
            p.process(e)
        return len(parsed)

    def text_path() -> int:
        p = build_pipeline(cfg.trigger, state_dir=None, model=None)
        tp = TextParser()
        for t in texts:
            p.process(tp.parse(t))
        return len(texts)

    results = {}
    for name, fn in (
        ("journalctl -o json alone", journalctl_only),
        ("read: journalctl + JSON parse", read_parse),
        ("read + L1 (no model)", read_parse_l1),
        ("L1 alone, parsed entries (1 core)", l1_only),
        ("text lines: parse + L1", text_path),
    ):
        best = min((timed(fn) for _ in range(2)), key=lambda r: r[1])
        results[name] = best
        print(f"{name:<36} {best[0] / best[1]:>10,.0f} entries/s  ({best[0]} in {best[1]:.2f}s)")
    read_t = results["read: journalctl + JSON parse"][1]
    full_t = results["read + L1 (no model)"][1]
    print(f"L1 end to end costs {full_t / read_t:.2f}x the read alone (target <= 2x)")


if __name__ == "__main__":
    main()
