"""The trigger model on a real llama-server (SmolLM2-135M): structure, caching, budget, degraded mode.

The tiny model's judgement is not under test; the contract is: only new warning-or-worse
templates are asked about, at most one call per template, answers are schema-valid and
cached across restarts, and a stopped model leaves deterministic triggers flowing.
"""

from __future__ import annotations

import json
from pathlib import Path

from ai_sysadmin.llm import CallRecord, LLMClient
from ai_sysadmin.trigger.classifier import AnswerCache, Classifier, Request, TokenBucket
from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES
from rig.llama import LlamaServer
from tests.conftest import role_config
from tests.trigger.helpers import T0_USEC, pipeline

NOVEL = [
    ("frobd", 3, "frobnicator lost quorum with peer 10.1.2.3 after 3 retries"),
    ("frobd", 3, "frobnicator lost quorum with peer 10.1.2.9 after 5 retries"),
    ("backupd", 4, "snapshot verification mismatch on volume tank/home"),
    ("backupd", 6, "snapshot of tank/home finished in 12 s"),  # routine: never asked about
]


def entries() -> list[Entry]:
    return [
        Entry(message=m, realtime_usec=T0_USEC + i, priority=p, identifier=ident, unit=f"{ident}.service")
        for i, (ident, p, m) in enumerate(NOVEL)
    ]


async def run_all(pipe, es: list[Entry]) -> None:  # type: ignore[no-untyped-def]
    for e in es:
        pipe.process(e)
    await pipe.classifier.drain()


async def test_new_error_templates_are_classified_once_and_cached(llama_trigger: LlamaServer, tmp_path: Path) -> None:
    records: list[CallRecord] = []
    async with LLMClient(role_config(llama_trigger, "trigger", timeout=180), on_call=records.append) as client:
        pipe = pipeline(tmp_path, model=client, model_min_severity="info", model_batch_size=4)
        for e in entries():
            pipe.process(e)
        # Entries wait for the model's first answer: the checkpoint carries them in its state.
        assert pipe.holding()
        held = pipe.checkpoint().state["held"]
        assert sorted(h["count"] for h in held) == [1, 2]
        await pipe.classifier.drain()
        assert not pipe.holding()
        assert pipe.classifier.calls == 1  # two candidate templates, one batched call
        assert [r.outcome for r in records] == ["ok"]
        assert pipe.stats.model_requests == 2
        model = [t for t in pipe.totals() if t.source == "model"]
        assert sorted(t.count for t in model) == [1, 2]  # held entries became triggers when the answer came
        for t in model:
            assert t.severity in SEVERITIES and t.category in CATEGORIES and t.summary
        assert not [t for t in pipe.totals() if "finished" in t.template]
        cp = pipe.checkpoint()
        assert sorted(t.count for t in cp.triggers) == [1, 2]
        saved = json.loads((tmp_path / "trigger" / "model-answers.json").read_text())["answers"]
        assert len(saved) == 2

        # A restart with the same state: answers come from the cache, no call at all.
        again = pipeline(tmp_path, model=client, model_min_severity="info")
        await run_all(again, entries())
        assert again.classifier.calls == 0 and len(records) == 1
        assert sorted(t.count for t in again.totals() if t.source == "model") == [1, 2]


async def test_single_template_batches_use_the_plain_schema(llama_trigger: LlamaServer) -> None:
    async with LLMClient(role_config(llama_trigger, "trigger", timeout=180)) as client:
        c = Classifier(client, AnswerCache(None), batch_size=1)
        got = []
        c.on_answer = lambda tid, a: got.append((tid, a))
        c.submit(Request("t1", "disk <*> is on fire", "disk sda is on fire", "smartd.service", 2))
        assert c.pending("t1")
        assert await c.step() == 1
        assert got[0][0] == "t1" and got[0][1] is not None and got[0][1].severity in SEVERITIES
        assert c.lookup("t1") == got[0][1] and not c.degraded


async def test_model_stopped_degrades_but_deterministic_triggers_flow(
    llama_trigger: LlamaServer, tmp_path: Path
) -> None:
    llama_trigger.stop()
    try:
        async with LLMClient(role_config(llama_trigger, "trigger", timeout=180)) as client:
            pipe = pipeline(tmp_path, model=client, model_min_severity="info")
            es = [
                *entries(),
                Entry(
                    message="Out of memory: Killed process 912 (java)",
                    realtime_usec=T0_USEC + 9,
                    priority=2,
                    identifier="kernel",
                ),
            ]
            await run_all(pipe, es)
            assert pipe.degraded and "trigger" in (pipe.classifier.last_error or "")
            assert pipe.classifier.calls == 1  # one failed batch, not one call per line
            sources = {t.source for t in pipe.totals()}
            assert "rule:oom-kill" in sources and "model" not in sources
            assert not pipe.holding()  # nothing waits on a dead model
            cp = pipe.checkpoint()
            assert [t.source for t in cp.triggers] == ["rule:oom-kill"]
    finally:
        llama_trigger.restart()
    async with LLMClient(role_config(llama_trigger, "trigger", timeout=180)) as client:
        pipe.classifier.model = client
        pipe.classifier.retry_after = 0
        pipe.classifier._resting_until = 0.0
        pipe.process(
            Entry(
                message="frobnicator lost quorum with peer 10.1.2.4 after 1 retries",
                realtime_usec=T0_USEC + 20,
                priority=3,
                identifier="frobd",
                unit="frobd.service",
            )
        )
        await pipe.classifier.drain()
        assert not pipe.degraded  # the model is back: degraded clears on the next answer
        assert any(t.source == "model" for t in pipe.totals())


def test_token_bucket_budget() -> None:
    now = [0.0]
    b = TokenBucket(per_minute=6, burst=2, clock=lambda: now[0])
    assert b.wait_time() == 0
    b.take()
    b.take()
    assert b.wait_time() == 10.0  # 6/min: one token every 10 s
    now[0] = 10.0
    assert b.wait_time() == 0


def test_queue_is_bounded() -> None:
    c = Classifier(model=None, cache=AnswerCache(None), queue_size=2)  # type: ignore[arg-type]
    assert c.submit(Request("a", "a", "a", None, 3)) and c.submit(Request("b", "b", "b", None, 3))
    assert not c.submit(Request("c", "c", "c", None, 3)) and c.dropped == 1


def test_held_entries_travel_with_the_checkpoint_and_resume_after_a_restart(tmp_path: Path) -> None:
    from ai_sysadmin.trigger.classifier import Answer
    from ai_sysadmin.trigger.pipeline import Pipeline
    from ai_sysadmin.trigger.rules import RuleSet
    from ai_sysadmin.trigger.templates import Templates

    def build(cache: AnswerCache) -> Pipeline:
        c = Classifier(model=None, cache=cache)  # type: ignore[arg-type]  # never asked here
        t = Templates(None)
        return Pipeline(t, RuleSet.build(), classifier=c)

    pipe = build(AnswerCache(None))
    for i in range(3):
        pipe.process(
            Entry(
                message=f"frobnicator lost quorum after {i} retries",
                realtime_usec=T0_USEC + i,
                priority=3,
                identifier="frobd",
                cursor=f"c{i}",
            )
        )
    cp = pipe.checkpoint()
    assert cp.cursor == "c2" and not cp.triggers  # the cursor does not wait for the model
    state = json.loads(json.dumps(cp.state))  # what the checkpoint file holds
    (held,) = state["held"]
    assert held["count"] == 3 and held["request"]["priority"] == 3

    # A restart whose cache already has the answer (it came after the last checkpoint):
    # the held entries become triggers at once, counted as one uninterrupted run would.
    cache = AnswerCache(None)
    cache.put(held["template_id"], Answer("high", "other", "quorum lost"))
    again = build(cache)
    assert again.restore(state)
    (t,) = again.totals()
    assert t.source == "model" and t.count == 3 and again.checkpoint().changed

    # Without an answer yet the held entries are asked about again, still held.
    later = build(AnswerCache(None))
    assert later.restore(state) and later.holding() and later.classifier.pending(held["template_id"])
