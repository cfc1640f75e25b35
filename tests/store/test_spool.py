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
    assert registry.get_sample_value("ai_sysadmin_spool_dropped_batches_total", {"kind": "metrics"}) == st.dropped["metrics"]
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
