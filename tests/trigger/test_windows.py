"""Dedup windows, deterministic ids, deltas for the sink, templates that survive a restart."""

from __future__ import annotations

from pathlib import Path

from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.sink import JsonlTriggerSink
from rig.journal import JournalWriter
from tests.trigger.helpers import T0_USEC, entry, pipeline, replay

FAIL = "nginx.service: Failed with result 'exit-code'."


def _e(msg: str, usec: int, unit: str = "nginx.service", cursor: str | None = None) -> Entry:
    return Entry(message=msg, realtime_usec=usec, priority=4, identifier="systemd", unit=unit, cursor=cursor)


def test_one_trigger_per_template_unit_and_window(journal_writer: JournalWriter, tmp_path: Path) -> None:
    lines = [
        entry(
            f"worker {i}: accept4() failed (24: Too many open files)", ident="nginx", unit="nginx.service", priority=3
        )
        for i in range(50)
    ]
    lines += [entry("accept4() failed (24: Too many open files)", ident="nginx", unit="other.service", priority=3)]
    path = journal_writer.write(tmp_path / "d.journal", lines, start_usec=T0_USEC)
    _, triggers = replay(path)
    by_unit = {t.unit: t for t in triggers}
    assert len(triggers) == 2  # one per unit, not one per line
    t = by_unit["nginx.service"]
    assert t.count == 50 and len(t.sample) == 5 and t.sample[0].startswith("worker 0:")
    assert t.first_seen < t.last_seen and t.source == "rule:resource-exhausted"
    assert by_unit["other.service"].count == 1


def test_windows_are_aligned_so_ids_are_deterministic() -> None:
    w = 300_000_000
    a, b = pipeline(), pipeline()
    for p in (a, b):
        for i in range(3):
            p.process(_e(FAIL, T0_USEC + i))
        p.process(_e(FAIL, T0_USEC + w + 5))  # next window
    ids_a = sorted((t.id, t.count) for t in a.totals())
    ids_b = sorted((t.id, t.count) for t in b.totals())
    assert ids_a == ids_b and [c for _, c in ids_a] in ([1, 3], [3, 1])
    # The same problem seen by a pipeline that only starts mid-window lands on the same id.
    c = pipeline()
    c.process(_e(FAIL, T0_USEC + 2))
    assert {t.id for t in c.totals()} < {i for i, _ in ids_a}


async def test_checkpoints_hand_out_deltas_that_add_up(tmp_path: Path) -> None:
    p = pipeline()
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    for i in range(7):
        p.process(_e(FAIL, T0_USEC + i, cursor=f"c{i}"))
        if i in (2, 5):
            cp = p.checkpoint()
            await sink.record_triggers(cp.triggers, cp.cursor)
            p.committed(cp)
    cp = p.checkpoint()
    assert [t.count for t in cp.triggers] == [1] and cp.cursor == "c6"
    await sink.record_triggers(cp.triggers, cp.cursor)
    stored = sink.triggers()
    assert [t.count for t in stored.values()] == [7]
    assert await sink.load_cursor() == "c6"
    empty = p.checkpoint()
    assert empty.triggers == [] and empty.cursor == "c6"


async def test_jsonl_sink_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    p = pipeline()
    p.process(_e(FAIL, T0_USEC, cursor="c0"))
    sink = JsonlTriggerSink(path)
    cp = p.checkpoint()
    await sink.record_triggers(cp.triggers, cp.cursor)
    with open(path, "ab") as f:
        f.write(b'{"stream":"journal","cursor":"c9","triggers":[{"id"')  # kill -9 mid-write
    sink2 = JsonlTriggerSink(path)  # a restart
    assert await sink2.load_cursor() == "c0"
    p.process(_e(FAIL, T0_USEC + 1, cursor="c1"))
    cp = p.checkpoint()
    await sink2.record_triggers(cp.triggers, cp.cursor)
    assert await sink2.load_cursor() == "c1"
    assert [t.count for t in sink2.triggers().values()] == [2]


def test_templates_and_ids_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    a = pipeline(state)
    a.process(_e("disk sda failed at sector 12", T0_USEC, unit="smartd.service"))
    a.process(_e("disk sdb failed at sector 99", T0_USEC + 1, unit="smartd.service"))
    a.checkpoint()  # saves the miner state
    b = pipeline(state)  # restarted
    assert b.templates.generation == a.templates.generation
    ma = a.templates.match("disk sdc failed at sector 7")
    mb = b.templates.match("disk sdc failed at sector 7")
    assert (ma.template_id, ma.is_new) == (mb.template_id, False)
    # A lost state file starts a new generation: no stale ids are reused.
    (state / "trigger" / "templates.drain").unlink()
    c = pipeline(state)
    assert c.templates.generation != a.templates.generation
