"""The spool on its own: durable across reopen, bounded, drops oldest metrics first, never triggers."""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry

from ai_sysadmin.store.spool import Batch, Spool, SpoolMetrics

MiB = 1024 * 1024


def metrics_batch(i: int, size: int = 1000) -> Batch:
    return Batch("metrics", {"rows": [[float(i), "pad", "x" * size, float(i)]]})


def trigger_batch(i: int) -> Batch:
    return Batch("triggers", {"stream": "journal", "cursor": f"c{i}", "triggers": [{"id": f"t{i}", "pad": "y" * 1000}]})


def test_bound_drops_oldest_metrics_and_keeps_every_trigger(tmp_path: Path, caplog) -> None:
    registry = CollectorRegistry()
    spool = Spool(tmp_path, max_bytes=1 * MiB, warn_ratio=0.8, metrics=SpoolMetrics(registry))
    with caplog.at_level(logging.WARNING, "ai_sysadmin.store.spool"):
        for i in range(300):
            assert spool.append(trigger_batch(i))
        for i in range(2000):  # ~2 MiB of metrics into a 1 MiB bound
            spool.append(metrics_batch(i))
    st = spool.state()
    assert st.bytes <= 1 * MiB and not st.over_bound
    assert st.dropped["metrics"] > 0 and st.warning
    assert "near its bound" in caplog.text and "dropped" in caplog.text
    assert (
        registry.get_sample_value("ai_sysadmin_spool_dropped_batches_total", {"kind": "metrics"})
        == st.dropped["metrics"]
    )
    assert registry.get_sample_value("ai_sysadmin_spool_fill_ratio") == st.fill_ratio

    # Reading back in order: every trigger batch, and only the newest metrics survived.
    triggers, metrics = [], []
    while (seg := spool.oldest()) is not None:
        for b in spool.read(seg):
            (triggers if b.kind == "triggers" else metrics).append(b)
        spool.remove(seg)
    assert [b.payload["cursor"] for b in triggers] == [f"c{i}" for i in range(300)]
    seen = [int(b.payload["rows"][0][0]) for b in metrics]
    assert seen == sorted(seen) and seen[-1] == 1999
    assert len(seen) + st.dropped["metrics"] == 2000
    assert spool.empty() and spool.cursor("journal") is None


def test_triggers_beyond_the_bound_are_kept_and_reported(tmp_path: Path, caplog) -> None:
    spool = Spool(tmp_path, max_bytes=1 * MiB)
    with caplog.at_level(logging.ERROR, "ai_sysadmin.store.spool"):
        for i in range(1200):
            assert spool.append(trigger_batch(i))
        assert not spool.append(metrics_batch(0))  # no room: a metrics batch gives way
    st = spool.state()
    assert st.over_bound and st.records == 1200 and st.dropped["metrics"] == 1
    assert "exceeds its bound" in caplog.text


def test_reopen_finds_pending_batches_and_skips_a_torn_last_line(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4 * MiB)
    for i in range(3):
        spool.append(trigger_batch(i))
    seg = spool.oldest()
    with open(seg.path, "ab") as f:
        f.write(b'{"id": "torn", "kind": "trig')  # a crash in the middle of an append
    again = Spool(tmp_path, max_bytes=4 * MiB)
    assert again.state().records == 3
    assert again.cursor("journal") == "c2"
    assert [b.payload["cursor"] for b in again.read(again.oldest())] == ["c0", "c1", "c2"]


CHILD = r"""
import json, resource, sys
from ai_sysadmin.store.spool import Batch, Spool, SpoolFull
spool = Spool(sys.argv[1], max_bytes=4 * 1024 * 1024)
spool.append(Batch("triggers", {"stream": "journal", "cursor": "c0", "triggers": [{"id": "t0"}]}))
size = sum(p.stat().st_size for p in spool.dir.glob("*-events.jsonl"))
# The next record would cross the file-size limit half-way: the kernel writes part of it.
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 400, size + 400))
out = {}
try:
    big = [{"id": "t1", "pad": "p" * 5000}]
    spool.append(Batch("triggers", {"stream": "journal", "cursor": "c1", "triggers": big}))
    out["big"] = "spooled"
except SpoolFull as exc:
    out["big"] = f"failed: {exc}"
# A small record after the failure must land whole, not glued to a torn tail.
spool.append(Batch("triggers", {"stream": "journal", "cursor": "c2", "triggers": [{"id": "t2"}]}))
out["state_bytes"] = spool.state().bytes
out["file_bytes"] = sum(p.stat().st_size for p in spool.dir.glob("*-events.jsonl"))
print(json.dumps(out))
"""


def test_a_write_failing_half_way_leaves_the_spool_readable(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel accept only part of a record (as ENOSPC does on a full disk)."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, cwd=repo, timeout=60
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["big"].startswith("failed:")  # reported failed: the caller does not advance its cursor
    assert out["state_bytes"] == out["file_bytes"]  # size accounting follows the file exactly
    again = Spool(tmp_path, max_bytes=4 * MiB)
    batches = [b for seg in [again.oldest()] for b in again.read(seg)]
    assert [b.payload["cursor"] for b in batches] == ["c0", "c2"]  # the failed record is wholly absent
    assert again.cursor("journal") == "c2"


def test_cursor_only_batches_are_coalesced(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 * MiB)
    for i in range(300):  # a long outage with a quiet journal: only the cursor moves
        assert spool.append(Batch("triggers", {"stream": "journal", "cursor": f"q{i}", "triggers": []}))
    st = spool.state()
    assert st.records == 1 and st.bytes == 0  # not 300 records in the never-dropped segments
    assert spool.cursor("journal") == "q299" and not spool.empty()
    reopened = Spool(tmp_path, max_bytes=1 * MiB)
    assert reopened.cursor("journal") == "q299" and [b.payload["cursor"] for b in reopened.pending_cursors()] == [
        "q299"
    ]
    # A batch with triggers carries its own, newer cursor: the coalesced one is superseded.
    reopened.append(trigger_batch(7))
    assert reopened.pending_cursors() == [] and reopened.cursor("journal") == "c7"
    reopened.append(Batch("triggers", {"stream": "journal", "cursor": "q9", "triggers": []}))
    seg = reopened.oldest()
    assert [b.payload["cursor"] for b in reopened.read(seg)] == ["c7"]
    reopened.remove(seg)
    (pending,) = reopened.pending_cursors()
    assert reopened.cursor("journal") == "q9"  # still waiting: flushed after the segments
    reopened.remove_pending(pending)
    assert reopened.empty() and reopened.cursor("journal") is None


def test_a_torn_tail_is_cut_when_the_spool_opens(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4 * MiB)
    spool.append(trigger_batch(0))
    seg = spool.oldest()
    with open(seg.path, "ab") as f:
        f.write(b'{"id": "torn", "kind": "trig')  # power lost in the middle of an append
    again = Spool(tmp_path, max_bytes=4 * MiB)
    again.append(trigger_batch(1))
    assert seg.path.read_bytes().endswith(b"\n") and b"torn" not in seg.path.read_bytes()
    assert [b.payload["cursor"] for s in [again.oldest()] for b in again.read(s)] == ["c0"]
