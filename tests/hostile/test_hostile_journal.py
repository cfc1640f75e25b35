"""Hostile journal entries into a real `ai-sysadmin run` (real journal files, real PostgreSQL, real model).

Any local user can write such entries through the native journal protocol, and an application
that logs a decoded request lets a remote client do it.  None of them may stop or stall the
service, and every legitimate trigger around them must be recorded exactly once.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from rig.journal import JournalWriter
from rig.llama import LlamaServer
from rig.net import wait_until
from tests.hostile.conftest import Service, conninfo, last_cursor, stored_position, stored_triggers
from tests.trigger.helpers import entry

WINDOW = 300
LEGIT_UNITS = 12


def legit(k: int, n: int) -> dict[str, Any]:
    """A real problem on its own unit: the OOM signature (one trigger per unit and window)."""
    return entry(
        f"Out of memory: Killed process {1000 + n} (app{k})", ident=f"legit{k}", unit=f"legit{k}.service", priority=3
    )


def hostile() -> list[dict[str, Any]]:
    """One of each kind, each matching a rule so that it really travels to PostgreSQL."""
    rnd = random.Random(9)
    oom = "Out of memory: Killed process 66 "
    out = [
        entry(
            f"{oom}(ev\x00il) \x00\x00 from %00 decoded".encode(), ident="nul", unit="hostile-nul.service", priority=3
        ),
        entry(
            b"segfault at 0 ip \xff\xfe\xc3\x28 sp error 4 in \xe2\x82",
            ident="badutf8",
            unit="hostile-utf8.service",
            priority=3,
        ),
        entry(oom + "(big) " + "A" * (1 << 20), ident="big", unit="hostile-big.service", priority=3),
        entry(
            oom + "(bin)",
            ident="bin",
            unit="hostile-bin.service",
            priority=3,
            BINARY=bytes(range(256)) * 64,
            COREDUMP_EXE=b"/usr/bin/\x00\xff\x01",
        ),
        entry(
            "\x1b[31m\x07Kernel panic - not syncing: \x1b]0;pwned\x07\x08\x7f\u202e\u2028",
            ident="ctl",
            unit="hostile-ctl.service",
            priority=0,
        ),
        entry(
            oom + "(cursor)",
            ident="cursor",
            unit="hostile-cursor.service",
            priority=3,
            CURSOR="s=0;i=1;b=2;m=3;t=4;x=5",
            _CURSOR="s=evil",
            MESSAGE_CURSOR="--after-cursor=x",
            __CURSOR="s=forged;i=999",
        ),
        # A model candidate: novel, at err, no rule knows it -- its prompt carries the NUL escaped.
        entry(
            b"frobnicator \x00 reactor \x1b[2J lost containment", ident="frob", unit="hostile-model.service", priority=3
        ),
    ]
    # 10k distinct templates within one second of journal time: a different leading word each.
    words = ["".join(rnd.choice("bcdfghjklmnpqrstvwz") for _ in range(8)) for _ in range(10_000)]
    out += [entry(f"{w} {w[::-1]} routine note", ident="flood", unit="hostile-flood.service") for w in words]
    return out


@pytest.mark.slow
def test_hostile_entries_never_stop_the_service(
    pg_database: dict[str, Any], journal_writer: JournalWriter, llama_trigger: LlamaServer, tmp_path: Path
) -> None:
    t0 = int(time.time() // WINDOW * WINDOW * 1_000_000)  # a window start: all of it lands in one window
    jfile = tmp_path / "journal" / "hostile.journal"
    before = [legit(k, n) for n in range(2) for k in range(LEGIT_UNITS)]
    journal_writer.write(jfile, before + hostile() + [legit(k, 2) for k in range(LEGIT_UNITS)], start_usec=t0)
    cfg = {
        "state_dir": str(tmp_path / "state"),
        "database": pg_database,
        "log_level": "info",
        "journal": {"source": "file", "path": str(jfile)},
        "roles": {
            "trigger": {"url": llama_trigger.url, "model": llama_trigger.alias, "timeout": 300},
            "review": {"enable": False},
            "meta": {"enable": False},
        },
        "trigger": {"commit_interval": 0.1, "poll_interval": 0.1, "model_min_severity": "info"},
    }
    info = conninfo(pg_database)
    svc = Service(cfg, tmp_path).start()
    try:
        end = last_cursor(jfile)
        wait_until(lambda: stored_position(info)[0] == end, 180, "L1 past every hostile entry", alive=svc.dead)
        # Still up and still following: entries written now are recorded too.
        journal_writer.write(jfile, [legit(k, 3) for k in range(LEGIT_UNITS)], start_usec=t0 + 20_000_000)
        end = last_cursor(jfile)
        wait_until(lambda: stored_position(info)[0] == end, 60, "entries after the hostile ones", alive=svc.dead)
        wait_until(
            lambda: any(r["source"] == "model" for r in stored_triggers(info)),
            180,
            "the model's answer on the NUL-bearing template",
            alive=svc.dead,
        )
        assert svc.dead() is None
        assert svc.stop() == 0, svc.log.read_text()[-3000:]
    finally:
        svc.ensure_stopped()

    rows = stored_triggers(info)
    log = svc.log.read_text(errors="replace")
    assert "L1 stopped" not in log and "Traceback" not in log, log[-3000:]
    # Every legitimate trigger exactly once: one row per unit, all four entries counted.
    per_unit: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        per_unit[r["unit"]].append(r)
    for k in range(LEGIT_UNITS):
        (row,) = per_unit[f"legit{k}.service"]
        assert (row["source"], row["count"]) == ("rule:oom-kill", 4)
    # The hostile ones are stored too, escaped and bounded -- not dropped, not crashing anything.
    # (host-wide metric thresholds of the machine running the test -- a full tmpfs -- have no unit)
    by_unit = {
        u: rs[0] for u, rs in per_unit.items() if u and u.startswith("hostile-") and u != "hostile-flood.service"
    }
    assert "\\x00" in by_unit["hostile-nul.service"]["sample"][0]
    assert "\ufffd" in by_unit["hostile-utf8.service"]["sample"][0]  # invalid UTF-8: replacement characters
    assert len(by_unit["hostile-big.service"]["sample"][0]) <= 2100
    assert by_unit["hostile-big.service"]["fields"]["message_length"] > 1 << 20
    ctl = by_unit["hostile-ctl.service"]
    assert ctl["source"].startswith("rule:") and "\\x1b" in ctl["sample"][0] and "\x1b" not in ctl["sample"][0]
    assert "\\x00" in by_unit["hostile-bin.service"]["fields"].get("coredump_exe", "\\x00")
    assert by_unit["hostile-cursor.service"]["count"] == 1
    assert by_unit["hostile-model.service"]["source"] == "model"
    assert not any(r["unit"] == "hostile-flood.service" and r["source"] != "burst" for r in rows)
    counts = Counter(r["source"] for r in rows)
    assert counts["rule:oom-kill"] == LEGIT_UNITS + 4  # 12 legit + nul, big, bin, cursor
