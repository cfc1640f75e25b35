"""propose_action: the only tool that touches actions, and it only *proposes*.

The proposal goes to the Proposer (the action service): the catalog validates it and
the policy decides (record, queue, execute, refuse) from the autonomy level and the
catalog's risk.  Nothing the model writes sets the risk or the decision.  A proposal that
contradicts the incident's evidence (an action it does not support, a unit it does not
name; actions/binding.py) is marked so and waits for a person.
"""

from __future__ import annotations

from typing import Any

from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.llm.accounting import current
from ai_sysadmin.meta.proposing import propose
from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolOutput, obj
from ai_sysadmin.meta.tools.proposals import record_proposal


def _catalog_ids() -> list[str]:
    try:
        from ai_sysadmin.actions.catalog import load_catalog

        return list(load_catalog().ids())
    except Exception:  # the catalog module is optional for the tool list
        return []


def tools(ctx: ToolContext) -> list[Tool]:
    ids = _catalog_ids()

    async def handler(args: dict[str, Any]) -> ToolOutput:
        outcome = await propose(
            ctx.proposer,
            Proposal(
                action=args["action"],
                params=args.get("params", {}),
                reason=args["reason"],
                source="meta",
                incident_id=current().incident_id,
            ),
        )
        record_proposal(outcome)
        text = (
            f"proposal {outcome.action}: decision {outcome.decision} (risk {outcome.risk or 'unknown'}); "
            f"{outcome.reason}" + (f"; action id {outcome.action_id}" if outcome.action_id else "")
        )
        if outcome.contradicts:  # the model should see that its proposal is not what the evidence shows
            text += f"; contradicts the incident's evidence: {outcome.contradicts}"
        if outcome.errors:
            text += "; errors: " + "; ".join(str(e) for e in outcome.errors)
        return ToolOutput(text, {"proposal": outcome.to_json()}, f"{outcome.action}: {outcome.decision}")

    params = obj(
        {
            "action": {
                "type": "string",
                "pattern": r"^[a-z][a-z0-9_]{0,63}$",
                "description": "catalog action id" + (f": one of {', '.join(ids)}" if ids else ""),
            },
            "params": {
                "type": "object",
                "maxProperties": 8,
                "description": 'the action\'s parameters, e.g. {"unit": "nginx.service"}',
            },
            "reason": {"type": "string", "minLength": 1, "maxLength": 500},
        },
        ("action", "reason"),
    )
    return [
        Tool(
            "propose_action",
            "Propose a catalog action to fix the problem. It is NOT run by you: the policy "
            "records, queues for a person, or runs it depending on its risk and the autonomy level.",
            params,
            handler,
            kind="propose",
        )
    ]
