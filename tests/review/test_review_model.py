"""L3 against the real tiny review model: schema-valid answers, retries, failures, restarts."""

from __future__ import annotations

import os
import signal

import jsonschema

from ai_sysadmin.llm import LLMClient
from ai_sysadmin.review.candidates import candidates_for
from ai_sysadmin.review.reviewer import labelled
from ai_sysadmin.review.schema import answer_schema
from rig.llama import tiny_server
from rig.net import free_port
from rig.review import service
from tests.review.conftest import review_cfg, until


async def test_answer_is_schema_valid_and_cached_on_the_next_review(tmp_path, llama_review) -> None:
    cfg = review_cfg(tmp_path, llama_review.url, llama_review.alias)
    async with LLMClient(cfg.roles.review) as client:
        svc = service(cfg, client=client)
        first = await svc.review_once("schedule")
        assert first.outcome == "ok", first.error
        incs = list(svc.incidents())
        ids = [i.id for i in incs]
        choices = labelled(incs, {i.key: candidates_for(i, lambda u: False) for i in incs})
        schema = answer_schema(ids, [f"I{i}" for i in ids], list(choices))
        schema["properties"]["findings"]["items"]["properties"]["evidence"] = {"type": "array"}  # refs vary
        jsonschema.validate(first.answer, schema)
        assert first.latency_s is not None and 0 < first.latency_s < cfg.roles.review.timeout
        assert first.prompt_tokens > 0 and first.context_tokens <= svc.budget
        # The model's choices are candidates (their parameters), then every other candidate
        # is proposed beside them by the rules: together, exactly the candidates, each once.
        chosen = {
            (choices[a["choice"]][0].id, choices[a["choice"]][1], str(choices[a["choice"]][2]))
            for a in first.answer["actions"]
        }
        got = [(p["incident"], p["action"], str(p["params"]), p["source"]) for p in first.proposals]
        assert sorted(g[:3] for g in got) == sorted((i.id, a, str(p)) for i, a, p in choices.values())
        assert {g[:3] for g in got if g[3] == "review"} == chosen
        assert {g[:3] for g in got if g[3] == "rules"} == {(i.id, a, str(p)) for i, a, p in choices.values()} - chosen
        for p in first.proposals:
            assert p["decision"] == "queue"  # suggest: everything waits for a person
        second = await svc.review_once("schedule")
        assert second.outcome == "ok", second.error
        assert second.cached_tokens > 0  # the stable prefix came from llama-server's prompt cache
        assert svc.sink.reviews[-1]["cached_tokens"] == second.cached_tokens


async def test_truncated_answer_retries_once_then_fails_and_candidates_stand(tmp_path, llama_review) -> None:
    cfg = review_cfg(tmp_path, llama_review.url, llama_review.alias, max_tokens=4)
    async with LLMClient(cfg.roles.review) as client:
        svc = service(cfg, client=client)
        res = await svc.review_once("schedule")
    assert res.outcome == "failed" and res.attempts == 2
    assert "cut off" in (res.error or "") and "after 2 attempt" in (res.error or "")
    assert res.completion_tokens <= 8
    actions = {(p["action"], p["source"]) for p in res.proposals}
    assert ("restart_unit", "rules") in actions and ("notify", "rules") in actions
    assert svc.sink.reviews[-1]["outcome"] == "failed"


async def test_model_down_is_skipped_and_reported(tmp_path) -> None:
    cfg = review_cfg(tmp_path, f"http://127.0.0.1:{free_port()}")
    async with LLMClient(cfg.roles.review) as client:
        svc = service(cfg, client=client)
        res = await svc.review_once("schedule")
    assert res.outcome == "skipped" and "unavailable" in (res.error or "")
    assert {p["source"] for p in res.proposals} == {"rules"} and res.proposals


async def test_server_killed_mid_review_then_back(tmp_path, rig_logs) -> None:
    server = tiny_server("review", rig_logs, port=free_port())
    server.start()
    try:
        cfg = review_cfg(tmp_path, server.url, server.alias)
        async with LLMClient(cfg.roles.review) as client:
            svc = service(cfg, client=client)
            import asyncio

            loop_task = asyncio.create_task(svc.run())
            svc.request()
            await until(lambda: svc.in_model_call, 60, "review waiting for the model")
            os.killpg(server.proc.pid, signal.SIGKILL)  # type: ignore[union-attr]
            server.proc.wait()  # type: ignore[union-attr]
            await until(lambda: svc.reviews >= 1, 120, "the interrupted review recorded")
            assert svc.last.outcome == "failed" and "mid-review" in (svc.last.error or "")
            assert not loop_task.done()
            server.start()
            svc.proposed.clear()
            svc.request()
            await until(lambda: svc.reviews >= 2, 300, "the next review")
            assert svc.last.outcome == "ok", svc.last.error
            assert not loop_task.done()
            loop_task.cancel()
    finally:
        server.stop()
