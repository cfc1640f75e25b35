"""The L4 part of an eval run: the real investigation loop, its tools answering from the scenario.

For each incident to investigate (the ones the review escalated, or every incident
with `--investigate all`) this runs `meta.loop.Investigator` -- the same loop, prompts,
diagnosis schema and checks as the service -- against the configured meta role, with:

* the tools' facts from `SnapshotHost` (the scenario's host snapshot, journal and the
  run's own incidents and triggers; a stand-in for the live host: nothing of this
  machine is read);
* knowledge from the shipped runbooks (`RunbookShelf`), not this host's knowledge base;
* `propose_action` and the diagnosis's actions going to the review's dry-run proposer
  (catalog validation and the policy at the chosen autonomy level; nothing executed);
* findings kept in memory (nothing stored).

What is kept per investigation is plain JSON (the results file holds it); eval.score
scores it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ai_sysadmin import envelope
from ai_sysadmin.config import Config
from ai_sysadmin.eval.scenario import Scenario
from ai_sysadmin.eval.shelf import RunbookShelf
from ai_sysadmin.eval.snapshot_host import NoCommands, SnapshotHost
from ai_sysadmin.meta.escalation import QUESTION

MODES = ("escalated", "all", "none")
MODEL_GONE = "meta model failed"  # the loop's error when the server went away: not the model's judgement


class MemoryFindings:
    """The Investigator's incident store for eval: reads the run's incidents, keeps findings in memory."""

    def __init__(self, host: SnapshotHost):
        self.host = host
        self.records: list[dict[str, Any]] = []

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        return await self.host.incident(incident_id)

    async def record(self, incident_id: int | None, severity: str, title: str, detail: dict[str, Any]) -> int:
        self.records.append({"incident": incident_id, "severity": severity, "title": title, "detail": detail})
        return len(self.records)

    async def update(self, finding_id: int, detail: dict[str, Any]) -> None:
        self.records[finding_id - 1]["detail"] = detail

    async def investigated_since(self, incident_id: int, seconds: float) -> bool:
        return False


def targets(mode: str, run: Any, escalated: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """(incident id, reason) to investigate, in order, each once."""
    if mode == "none":
        return []
    if mode == "all":
        why = dict(escalated)
        return [(i.id, why.get(i.id, "eval --investigate all: every incident is investigated")) for i in run.incidents]
    seen: dict[int, str] = {}
    for incident_id, reason in escalated:
        seen.setdefault(incident_id, reason)
    return list(seen.items())


async def investigate(cfg: Config, sc: Scenario, run: Any, todo: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Run L4 for each target; one JSON-able record per investigation."""
    from ai_sysadmin.llm import LLMClient

    calls: list[Any] = []
    client = LLMClient(cfg.roles.meta, on_call=calls.append)
    out = []
    try:
        for incident_id, reason in todo:
            out.append(await _one(cfg, sc, run, client, calls, incident_id, reason))
    finally:
        await client.aclose()
    return out


async def _one(
    cfg: Config, sc: Scenario, run: Any, client: Any, calls: list[Any], incident_id: int, reason: str
) -> dict[str, Any]:
    from ai_sysadmin.compose.investigator import build_investigator

    res = run.result
    host = SnapshotHost(
        sc,
        disk_paths=cfg.meta.disk_paths,
        triggers=run.triggers,
        incidents=run.incidents,
        findings=res.findings,
        proposals=res.proposals,
    )
    shelf = RunbookShelf()
    runner = NoCommands()  # nothing in the toolset may run a command here
    # The host, knowledge and findings are this scenario's: a fresh investigator per incident.
    inv = build_investigator(
        cfg,
        client=client,
        proposer=run.proposer,
        knowledge=shelf,
        host=host,
        runner=runner,
        findings=MemoryFindings(host),
    )
    first_call = len(calls)
    started = time.monotonic()
    question = QUESTION.format(id=incident_id, reason=envelope.neutralise(str(reason))[:500])
    result = await inv.investigate(question, incident_id=incident_id)
    mine = calls[first_call:]
    opened = await host.incident(incident_id)
    returned: dict[str, set[str]] = {k: set(v) for k, v in result.seen_ids.items()}
    returned.setdefault("tool_call", set()).update(s.call_id for s in result.steps if s.ok and not s.refused)
    returned.setdefault("incident", set()).add(str(incident_id))
    returned.setdefault("trigger", set()).update(str(t["id"]) for t in (opened or {}).get("triggers", []))
    returned.setdefault("knowledge", set()).update(shelf.returned)
    d = result.diagnosis
    skipped = result.error if result.outcome == "failed" and (result.error or "").startswith(MODEL_GONE) else None
    return {
        "incident": incident_id,
        "reason": str(reason)[:200],
        "outcome": result.outcome,
        "error": result.error,
        "skipped": skipped,
        "host": host.name,
        "diagnosis": {
            "source": d.get("source"),
            "root_cause": d.get("root_cause", ""),
            "confidence": d.get("confidence"),
            "severity": d.get("severity"),
            "evidence": [
                {"kind": e.get("kind"), "id": str(e.get("id")), "verified": e.get("verified")}
                for e in d.get("evidence", [])
            ],
            "proposed_actions": d.get("proposed_actions", []),
        },
        "steps": [
            {
                "call_id": s.call_id,
                "tool": s.tool,
                "arguments": s.arguments,
                "ok": s.ok,
                "refused": s.refused,
                "summary": s.summary,
            }
            for s in result.steps
        ],
        "returned_ids": {k: sorted(v) for k, v in returned.items()},
        "facts_asked": list(host.calls),
        "commands_refused": len(runner.refused),
        "proposals": [
            {k: p.to_json().get(k) for k in ("action", "params", "decision", "source", "risk", "incident")}
            for p in result.proposals
        ],
        "model_calls": len(mine),
        "prompt_tokens": sum(c.prompt_tokens for c in mine),
        "completion_tokens": sum(c.completion_tokens for c in mine),
        "latency_s": round(time.monotonic() - started, 3),
    }


def call_key(step: dict[str, Any]) -> str:
    """A tool call's identity: the same tool with the same arguments is a repeat."""
    return step.get("tool", "") + "\x00" + json.dumps(step.get("arguments"), sort_keys=True)
