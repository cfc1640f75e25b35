"""LLM call accounting from a real llama-server call; incidents list/show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ai_sysadmin.llm import LLMClient
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.llm_calls import LLMCallRecorder
from rig.triggers import make_trigger
from tests.conftest import make_config, role_config


async def test_llm_calls_are_recorded_through_the_on_call_hook(
    pg_database: dict[str, Any], tmp_path: Path, llama_embed
) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        from ai_sysadmin.llm.accounting import call_context

        async with LLMClient(role_config(llama_embed, "embed", timeout=300), on_call=store.llm_calls) as client:
            with call_context(layer="knowledge", incident_id=17):
                vectors = await client.embed(["disk full on /var", "sshd: failed password"])
        assert len(vectors) == 2
        await store.llm_calls.drain()
        since = datetime.now(UTC) - timedelta(hours=1)
        totals = await LLMCallRecorder.totals(store.writer, since)
        assert [(r[0], r[1], r[2]) for r in totals] == [("embed", "ok", 1)]
        assert totals[0][3] > 0  # prompt tokens counted by the server
        # The layer and the incident the call served are persisted with it.
        assert [r[:3] for r in await LLMCallRecorder.by_layer(store.writer, since)] == [("knowledge", "embed", 1)]
        async with store.pool.connection() as conn:
            cur = await conn.execute("SELECT layer, incident_id FROM llm_calls")
            assert await cur.fetchall() == [("knowledge", 17)]
    finally:
        await store.close()


async def test_incident_groups_triggers(pg_database: dict[str, Any], tmp_path: Path) -> None:
    store = await open_store(make_config(tmp_path, database=pg_database))
    try:
        a, b = make_trigger(1, count=2), make_trigger(2)
        await store.triggers.record_triggers([a, b], "c1")
        iid = await store.incidents.open("nginx keeps failing", "high", "unit-failure", "nginx.service", [a.id, b.id])
        await store.incidents.set_status(iid, "resolved", resolution="restarted", outcome="verified")
        listed = await store.incidents.list()
        assert [(i["id"], i["status"], i["triggers"]) for i in listed] == [(iid, "resolved", 2)]
        shown = await store.incidents.show(iid)
        assert shown["resolution"] == "restarted" and shown["resolved_at"] is not None
        assert {t["id"] for t in shown["triggers"]} == {a.id, b.id}
        assert await store.incidents.show(iid + 1) is None
        assert await store.incidents.list(status="open") == []
    finally:
        await store.close()
