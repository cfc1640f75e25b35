"""Hostile text into a real PostgreSQL: sanitised on the way in; what the database still refuses is
quarantined with its reason, on the direct path and the spool flush path alike, and the cursor moves on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ai_sysadmin.sanitize import clean_json, clean_text
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.spool import Batch
from rig.triggers import make_trigger
from tests.conftest import make_config
from tests.store.helpers import wait_for

HOSTILE = "user\x00name\x1b[31m red \ud800 lone \u202e rtl \x7f end"


def test_sanitize_escapes_and_bounds() -> None:
    out = clean_text(HOSTILE)
    assert "\x00" not in out and "\x1b" not in out and "\ud800" not in out and "\u202e" not in out
    assert "\\x00" in out and "\\x1b" in out and "\\ud800" in out and "\\u202e" in out  # escaped, not dropped
    assert clean_text(out) == out  # idempotent: sanitising twice changes nothing
    assert clean_text("tab\tand\nnewline") == "tab\tand\nnewline"
    long = clean_text("x" * 1_048_576, 1000)
    assert len(long) < 1100 and long.endswith("…[cut: 1047576 more characters]")
    assert clean_json({"k\x00": ["a\x00", 1, float("nan"), None]}) == {"k\\x00": ["a\\x00", 1, "nan", None]}


async def test_hostile_text_is_stored_escaped(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        t = make_trigger(1, sample=[HOSTILE, "z" * 50_000])
        t.fields["weird\x00key"] = HOSTILE
        t.unit = "a\x00b.service"
        await store.triggers.record_triggers([t], "c1")
        row = await store.triggers.get(t.id)
        assert row["sample"][0] == clean_text(HOSTILE) and "\\x00" in row["sample"][0]
        assert len(row["sample"][1]) < 2100 and "[cut:" in row["sample"][1]
        assert row["unit"] == "a\\x00b.service" and row["fields"]["weird\\x00key"] == clean_text(HOSTILE)
        assert await store.triggers.load_cursor() == "c1"
        assert store.quarantine.state().records == 0
    finally:
        await store.close()


def refused(n: int) -> dict[str, Any]:
    """A trigger PostgreSQL refuses even sanitised: a negative count violates CHECK (count >= 0)."""
    return {**make_trigger(n).to_json(), "count": -5}


async def test_a_refused_record_is_quarantined_and_the_rest_goes_in(
    pg_database: dict[str, Any], tmp_path: Path
) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        good = [make_trigger(2).to_json(), make_trigger(3).to_json()]
        payload = {"stream": "journal", "cursor": "c7", "triggers": [good[0], refused(1), good[1]]}
        assert await store.writer.submit(Batch("triggers", payload)) == "stored"
        assert await store.triggers.get(make_trigger(2).id) and await store.triggers.get(make_trigger(3).id)
        assert await store.triggers.get(make_trigger(1).id) is None
        assert await store.triggers.load_cursor() == "c7"  # the cursor moved on
        (rec,) = store.quarantine.records()
        assert rec["kind"] == "trigger" and "CheckViolation" in rec["reason"] and rec["record"]["count"] == -5
        st = store.quarantine.state()
        assert st.records == 1 and "CheckViolation" in (st.last_reason or "")

        # A kind without per-record splitting is quarantined whole: an audit record with a bad time.
        assert await store.writer.submit(Batch("audit", {"at": "not a time", "actor": "x", "event": "y"})) == "stored"
        assert store.quarantine.state().records == 2

        # The spool flush path uses the same mechanism: a spooled refused record does not block the rest.
        store.spool.append(Batch("triggers", {"stream": "journal", "cursor": "c8", "triggers": [refused(4)]}))
        store.spool.append(
            Batch("triggers", {"stream": "journal", "cursor": "c9", "triggers": [make_trigger(5).to_json()]})
        )
        store.writer._wake.set()
        await wait_for(store.spool.empty, 30, "spool flushed past the refused record")
        assert await store.triggers.get(make_trigger(5).id) and await store.triggers.load_cursor() == "c9"
        assert [r["record"]["id"] for r in store.quarantine.records() if r["kind"] == "trigger"] == [
            make_trigger(1).id,
            make_trigger(4).id,
        ]
        assert not (Path(store.spool.dir) / "rejected.jsonl").exists()  # one mechanism, one place
    finally:
        await store.close()
