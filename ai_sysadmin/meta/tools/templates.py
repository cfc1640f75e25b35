"""trigger_templates: the log templates behind recent triggers, with counts (not raw floods)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ai_sysadmin.meta.tools.base import UNIT, Tool, ToolError, ToolOutput, obj
from ai_sysadmin.meta.tools.metrics import DURATION, seconds
from ai_sysadmin.vocab import SEVERITIES


def tools(ctx: Any) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        if ctx.pool is None:
            raise ToolError("no database configured: triggers are unavailable")
        since = datetime.now(timezone.utc) - timedelta(seconds=seconds(args.get("since", "24h")))
        q = ("SELECT template_id, min(template), unit, max(severity), min(category), sum(count), max(last_seen), "
             "(array_agg(id ORDER BY last_seen DESC))[1:3] FROM triggers WHERE last_seen >= %s")
        params: list[Any] = [since]
        if "unit" in args:
            q += " AND unit = %s"
            params.append(args["unit"])
        if "severity" in args:
            q += " AND severity = ANY(%s)"
            params.append(list(SEVERITIES[: SEVERITIES.index(args["severity"]) + 1]))
        q += " GROUP BY template_id, unit ORDER BY max(last_seen) DESC LIMIT %s"
        params.append(args.get("limit", 20))
        async with ctx.pool.connection() as conn:
            rows = await (await conn.execute(q, params)).fetchall()
        if not rows:
            return ToolOutput("no triggers in that range", {"evidence_ids": {"trigger": []}}, "0 templates")
        lines = [f"x{total} {sev} {cat} unit={unit} last {last:%Y-%m-%d %H:%M:%S} triggers {','.join(ids)}: {tpl}"
                 for _, tpl, unit, sev, cat, total, last, ids in rows]
        ids = [i for r in rows for i in r[7]]
        return ToolOutput("\n".join(lines), {"evidence_ids": {"trigger": ids}}, f"{len(rows)} templates")

    params = obj({"unit": UNIT, "since": {"type": "string", "pattern": DURATION},
                  "severity": {"type": "string", "enum": list(SEVERITIES), "description": "at least this severe"},
                  "limit": {"type": "integer", "minimum": 1, "maximum": 50}})
    return [Tool("trigger_templates", "Log templates (variable parts masked) behind recent triggers, with counts, "
                 "severity and trigger ids.", params, handler, narrow_hint="give a unit, a severity or a shorter since")]
