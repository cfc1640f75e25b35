"""The L4 loop against the real meta llama-server (tiny model, Qwen2.5 template): plumbing, not judgement.

Each test forces the tiny model with tool_choice=required + the `<tool_call>` prefill and
narrows the offered tools with `meta.tools`, so which tool it calls is determined by
what is offered; the loop's behaviour (execution, refusal, limits, errors, failure
recording) is what is asserted.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from ai_sysadmin import envelope
from ai_sysadmin.llm import CallRecord, LLMClient
from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.loop import Event, Investigator
from ai_sysadmin.meta.tools import Toolset, build_toolset
from rig.llama import LlamaServer
from tests.meta.conftest import FULL_DIAGNOSIS, meta_config, start_meta_server


def tool_messages(inv) -> list[dict[str, Any]]:
    return [m for m in inv.messages if m["role"] == "tool"]


async def run(
    cfg,
    *,
    question: str = "Why does myapp.service keep failing?",
    tools: Toolset | None = None,
    store: Any = None,
    incident_id: int | None = None,
    records: list | None = None,
    on_event=None,
):
    async with LLMClient(cfg.roles.meta, on_call=(records.append if records is not None else None)) as client:
        inv = Investigator(cfg, client, tools or build_toolset(cfg), None, incident_store=store)
        return await inv.investigate(question, incident_id=incident_id, on_event=on_event)


def garbled(step) -> bool:
    """A call whose arguments the tiny model never finished (answered with an error, not run)."""
    return isinstance(step.arguments, dict) and "raw" in step.arguments


def executed(inv, tool: str):
    """The first call of `tool` that ran."""
    runs = [s for s in inv.steps if s.tool == tool and not s.refused and not garbled(s)]
    assert runs, [s.to_json() for s in inv.steps]
    return runs[0]


async def test_tool_call_is_executed_and_its_result_returned(
    tmp_path: Path, meta_server: LlamaServer, migrated
) -> None:
    db, pool = migrated
    cfg = meta_config(
        tmp_path, meta_server, database=db, meta={"max_steps": 3, "tools": ["disk_usage"], **FULL_DIAGNOSIS}
    )
    events: list[Event] = []
    records: list[CallRecord] = []

    async def collect(e: Event) -> None:
        events.append(e)

    inv = await run(cfg, question="Is a disk full?", store=MetaFindings(pool), records=records, on_event=collect)
    step = executed(inv, "disk_usage")
    assert step.ok and step.call_id.startswith("c"), step
    # The result went back to the model as the tool message for that call id, inside one envelope.
    [msg] = [m for m in tool_messages(inv) if m["tool_call_id"] == step.call_id]
    assert envelope.is_closed_once(msg["content"]) and 'kind="tool:disk_usage"' in msg["content"]
    assert " size " in msg["content"] and " inodes " in msg["content"]
    calls = [c for m in inv.messages if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert step.call_id in [c["id"] for c in calls]
    # Events: the step's start and result, answer deltas, the diagnosis last.
    mine = [e for e in events if e.data.get("call_id") == step.call_id]
    assert [e.kind for e in mine] == ["step_start", "step_result"]
    assert mine[1].data == {
        "call_id": step.call_id,
        "tool": "disk_usage",
        "ok": True,
        "summary": step.summary,
        "truncated": False,
    }
    kinds = [e.kind for e in events]
    assert "answer_delta" in kinds and kinds[-1] == "diagnosis" and inv.answer
    # Then the final turns had no tools; the diagnosis is schema-shaped and stored.
    kinds = [t["kind"] for t in inv.turns]
    assert kinds[-2:] == ["stream", "structured"] and set(kinds[:-2]) == {"tools"} and len(kinds) <= 5
    assert set(inv.diagnosis) >= {"root_cause", "confidence", "evidence", "proposed_actions", "admin_checks"}
    assert 0 <= inv.diagnosis["confidence"] <= 1
    row = await MetaFindings(pool).get(inv.finding_id)
    assert row["layer"] == "meta" and "disk_usage" in [s["tool"] for s in row["detail"]["steps"]]
    transcript = row["detail"]["transcript"]
    assert transcript[0]["role"] == "system" and len(json.dumps(transcript)) <= cfg.meta.transcript_max_chars + 2000
    # Every model call was tagged as the meta layer.
    assert records and {(r.layer, r.kind) for r in records} == {
        ("meta", "tools"),
        ("meta", "stream"),
        ("meta", "structured"),
    }


async def test_identical_call_is_refused_and_the_step_limit_forces_an_answer(
    tmp_path: Path, meta_server: LlamaServer
) -> None:
    # disk_usage takes no arguments: every call of it is identical to the first.
    cfg = meta_config(tmp_path, meta_server, meta={"max_steps": 3, "tools": ["disk_usage"]})
    inv = await run(cfg, question="Is any disk full?")
    first = executed(inv, "disk_usage")
    later = [s for s in inv.steps if s.tool == "disk_usage" and s is not first and not garbled(s)]
    assert [s for s in inv.steps if s.tool == "disk_usage" and not s.refused and not garbled(s)] == [first]
    assert later and all(s.refused and not s.ok and f"identical to {first.call_id}" in s.summary for s in later)
    refusal = next(m["content"] for m in tool_messages(inv) if m["tool_call_id"] == later[0].call_id)
    assert "Move on" in refusal and f"identical to {first.call_id}" in refusal
    assert len(tool_messages(inv)) == len([s for s in inv.steps if s.tool == "disk_usage"])  # each got an answer
    # At most three tool turns (the limit; two refused-only turns end it early), then the diagnosis.
    kinds = [t["kind"] for t in inv.turns]
    assert kinds[-1] == "structured" and set(kinds[:-1]) == {"tools"} and 2 <= len(kinds) - 1 <= 3
    assert inv.answer and inv.diagnosis["root_cause"]


class Advertising(Toolset):
    """The real toolset, offering the model one tool more than it has or a loosened schema.

    Not a mock: the model really calls what it is offered; this is how a model that
    invents a tool name or sends ill-typed arguments looks to the loop.
    """

    def __init__(self, base: Toolset, extra: list[dict[str, Any]], replace: bool = False):
        super().__init__(
            [base.get(n) for n in base.names],
            max_chars=base.max_chars,
            timeout=base.timeout,  # type: ignore[misc]
            context=base.context,
        )
        self.extra = extra
        self.replace = replace

    def definitions(self) -> list[dict[str, Any]]:
        return self.extra if self.replace else super().definitions() + self.extra


def fn(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name} tool",
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


async def test_unknown_tool_is_an_error_result_and_the_loop_goes_on(tmp_path: Path, meta_server: LlamaServer) -> None:
    cfg = meta_config(tmp_path, meta_server, meta={"max_steps": 2, "tools": ["disk_usage"]})
    tools = Advertising(build_toolset(cfg), [fn("restart_everything", {}, [])], replace=True)
    inv = await run(cfg, tools=tools)
    assert inv.steps and inv.steps[0].tool == "restart_everything" and not inv.steps[0].ok
    content = tool_messages(inv)[0]["content"]
    assert "unknown tool 'restart_everything'" in content and "disk_usage" in content
    assert [t["kind"] for t in inv.turns][:2] == ["tools", "tools"]  # the loop went on to step 2
    assert inv.outcome in ("ok", "degraded") and inv.diagnosis


async def test_ill_typed_arguments_are_an_error_result_naming_the_field(
    tmp_path: Path, meta_server: LlamaServer
) -> None:
    cfg = meta_config(tmp_path, meta_server, meta={"max_steps": 2, "tools": ["unit_status"]})
    # Offered with `unit` as an integer, validated as a unit name: the model's call must fail validation.
    loose = fn("unit_status", {"unit": {"type": "integer"}}, ["unit"])
    inv = await run(cfg, tools=Advertising(build_toolset(cfg), [loose], replace=True))
    typed = [s for s in inv.steps if s.tool == "unit_status" and not s.refused and "unit" in (s.arguments or {})]
    assert typed and all(isinstance(s.arguments["unit"], int) and not s.ok for s in typed)
    contents = "\n".join(m["content"] for m in tool_messages(inv))
    assert "invalid argument unit: must be of type string" in contents
    assert len([t for t in inv.turns if t["kind"] == "tools"]) >= 2  # the loop went on


async def test_undecodable_arguments_go_back_to_the_model_and_the_loop_goes_on(
    tmp_path: Path, meta_server: LlamaServer
) -> None:
    # The tiny model writes journal_query arguments it never closes: not JSON.
    cfg = meta_config(tmp_path, meta_server, meta={"max_steps": 2, "tools": ["journal_query"], "step_max_tokens": 64})
    inv = await run(cfg)
    bad = [s for s in inv.steps if "arguments are not JSON" in s.summary]
    assert bad and not bad[0].ok and "raw" in bad[0].arguments
    told = next(m["content"] for m in tool_messages(inv) if m["tool_call_id"] == bad[0].call_id)
    assert envelope.is_closed_once(told) and "Send the arguments as one complete JSON object" in told
    assert [t["kind"] for t in inv.turns][:2] == ["tools", "tools"]  # the loop went on
    assert inv.diagnosis["root_cause"]


async def test_model_that_never_calls_a_tool_still_yields_a_diagnosis(tmp_path: Path, meta_server: LlamaServer) -> None:
    # tool_choice auto and no prefill: the tiny model answers in text and calls nothing.
    cfg = meta_config(
        tmp_path,
        meta_server,
        meta={"max_steps": 3, "tool_choice": "auto", "prefill": "", "step_max_tokens": 64, "tools": ["disk_usage"]},
    )
    inv = await run(cfg, question="Say hello.")
    assert not [s for s in inv.steps if s.ok]
    assert inv.turns[0]["kind"] == "tools" and inv.turns[-1]["kind"] == "structured"
    assert inv.answer and inv.diagnosis["root_cause"] and inv.outcome in ("ok", "degraded")
    # Nothing verified backs it: confidence is capped (or 0 for the fallback).
    assert inv.diagnosis["confidence"] <= 0.3


async def test_server_killed_mid_loop_is_a_recorded_failure(tmp_path: Path, migrated, rig_logs: Path) -> None:
    db, pool = migrated
    server = start_meta_server(rig_logs, alias="meta-doomed")
    try:
        cfg = meta_config(
            tmp_path, server, database=db, meta={"max_steps": 4, "tools": ["disk_usage", "top_processes"]}
        )

        async def kill_after_first_result(e: Event) -> None:
            if e.kind == "step_result" and server.proc is not None and server.proc.poll() is None:
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait()

        inv = await run(cfg, store=MetaFindings(pool), on_event=kill_after_first_result)
    finally:
        server.stop()
    assert inv.outcome == "failed"
    assert "cannot reach" in inv.error and inv.steps and inv.steps[0].ok
    assert inv.diagnosis["source"] == "fallback" and inv.diagnosis["confidence"] == 0.0
    assert inv.diagnosis["evidence"][0]["id"] == "c1"
    row = await MetaFindings(pool).get(inv.finding_id)
    assert row["detail"]["outcome"] == "failed" and "cannot reach" in row["detail"]["error"]


async def test_deadline_ends_the_tool_phase(tmp_path: Path, meta_server: LlamaServer) -> None:
    # A deadline this short leaves the tool phase no time (the answer phase keeps its reserve).
    cfg = meta_config(tmp_path, meta_server, meta={"max_steps": 5, "deadline_seconds": 0.001, "tools": ["disk_usage"]})
    inv = await run(cfg)
    assert inv.outcome == "deadline" and "deadline" in inv.error
    assert inv.diagnosis and inv.diagnosis["root_cause"]


class ProposingToolset(Toolset):
    """The real toolset, offering the model one parameterless tool, `propose_fix`; each call of it
    runs the real propose_action for `unit`.

    Not a mock: the model really calls the tool and the real action service records the
    proposal.  The tiny model cannot be relied on to write an action's parameters, so which
    unit is proposed is the test's; what is tested is which investigation reports it.
    """

    def __init__(self, base: Toolset):
        super().__init__(
            [base.get(n) for n in base.names],
            max_chars=base.max_chars,
            timeout=base.timeout,  # type: ignore[misc]
            context=base.context,
        )
        self.unit = ""

    def definitions(self) -> list[dict[str, Any]]:
        return [fn("propose_fix", {}, [])]

    async def call(self, name: str, arguments: Any):
        return await super().call(
            "propose_action",
            {"action": "restart_unit", "params": {"unit": self.unit}, "reason": f"{self.unit} keeps failing"},
        )


async def test_each_investigation_reports_only_its_own_proposals(
    tmp_path: Path, meta_server: LlamaServer, migrated
) -> None:
    """One investigator (the service builds it once) investigating twice in a row (issue 19)."""
    from ai_sysadmin.actions.proposals import ActionService

    db, pool = migrated
    cfg = meta_config(tmp_path, meta_server, database=db, meta={"max_steps": 3, "tools": ["propose_action"]})
    actions = ActionService(cfg, pool)
    tools = ProposingToolset(build_toolset(cfg, pool=pool, proposer=actions))
    async with LLMClient(cfg.roles.meta) as client:
        inv = Investigator(cfg, client, tools, actions, incident_store=MetaFindings(pool))
        reports = []
        for unit in ("first.service", "second.service"):
            tools.unit = unit
            events: list[Event] = []

            async def collect(e: Event, events: list[Event] = events) -> None:
                events.append(e)

            result = await inv.investigate(f"Why does {unit} keep failing?", on_event=collect)
            reports.append((unit, result, [e.data for e in events if e.kind == "proposal"]))
    for unit, result, proposal_events in reports:
        proposed = [p.params.get("unit") for p in result.proposals]
        assert proposed and set(proposed) == {unit}, (unit, [s.to_json() for s in result.steps])
        assert {e["params"]["unit"] for e in proposal_events} == {unit}
        assert any(p.action_id is not None for p in result.proposals)  # recorded by the real action service
    # The stored findings carry each investigation's own proposals too.
    for unit, result, _ in reports:
        row = await MetaFindings(pool).get(result.finding_id)
        assert {p["params"]["unit"] for p in row["detail"]["proposals"]} == {unit}
