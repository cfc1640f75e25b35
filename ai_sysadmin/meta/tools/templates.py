"""trigger_templates: the log templates behind recent triggers, with counts (not raw floods)."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import UNIT, Tool, ToolOutput, obj
from ai_sysadmin.meta.tools.metrics import DURATION, seconds
from ai_sysadmin.vocab import SEVERITIES


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        severities = list(SEVERITIES[: SEVERITIES.index(args["severity"]) + 1]) if "severity" in args else None
        rows = await ctx.host.trigger_templates(
            args.get("unit"), severities, seconds(args.get("since", "24h")), args.get("limit", 20)
        )
        if not rows:
            return ToolOutput("no triggers in that range", {"evidence_ids": {"trigger": []}}, "0 templates")
        lines = [
            f"x{total} {sev} {cat} unit={unit} last {last:%Y-%m-%d %H:%M:%S} triggers {','.join(ids)}: {tpl}"
            for _, tpl, unit, sev, cat, total, last, ids in rows
        ]
        ids = [i for r in rows for i in r[7]]
        return ToolOutput("\n".join(lines), {"evidence_ids": {"trigger": ids}}, f"{len(rows)} templates")

    params = obj(
        {
            "unit": UNIT,
            "since": {"type": "string", "pattern": DURATION},
            "severity": {"type": "string", "enum": list(SEVERITIES), "description": "at least this severe"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        }
    )
    return [
        Tool(
            "trigger_templates",
            "Log templates (variable parts masked) behind recent triggers, with counts, severity and trigger ids.",
            params,
            handler,
            narrow_hint="give a unit, a severity or a shorter since",
        )
    ]
