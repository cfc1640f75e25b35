"""incident_history: recent incidents, or one incident with its triggers, findings and actions."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import UNIT, Tool, ToolError, ToolOutput, obj

STATUSES = ("open", "acknowledged", "resolved", "closed")


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        if "incident_id" in args:
            inc = await ctx.host.incident(args["incident_id"])
            if inc is None:
                raise ToolError(f"invalid argument incident_id: no incident {args['incident_id']}")
            lines = [
                f"incident {inc['id']}: {inc['title']} [{inc['status']}] {inc['severity']} {inc['category']}"
                f" unit={inc.get('unit')} opened {inc['opened_at']:%Y-%m-%d %H:%M}"
            ]
            for key in ("summary", "diagnosis", "resolution", "outcome"):
                if inc.get(key):
                    lines.append(f"{key}: {inc[key]}")
            lines += [
                f"trigger {t['id']}: {t['severity']} x{t['count']} {t['source']}: {t['template']}"
                for t in inc["triggers"][:30]
            ]
            lines += [f"finding {f['id']} ({f['layer']}): {f['title']}" for f in inc["findings"][-10:]]
            lines += [f"action {a['id']} {a['action']} [{a['status']}]" for a in inc["actions"][-10:]]
            ids = {"incident": [str(inc["id"])], "trigger": [str(t["id"]) for t in inc["triggers"]]}
            return ToolOutput("\n".join(lines), {"evidence_ids": ids}, f"incident {inc['id']}: {inc['status']}")
        rows = await ctx.host.incidents(args.get("status"), args.get("limit", 10) * (4 if "unit" in args else 1))
        if "unit" in args:
            rows = [r for r in rows if r.get("unit") == args["unit"]][: args.get("limit", 10)]
        if not rows:
            return ToolOutput("no incidents", {"evidence_ids": {"incident": []}}, "0 incidents")
        lines = [
            f"incident {r['id']} [{r['status']}] {r['severity']} {r['category']} unit={r.get('unit')} "
            f"updated {r['updated_at']:%Y-%m-%d %H:%M}: {r['title']} ({r['triggers']} triggers)"
            for r in rows
        ]
        return ToolOutput(
            "\n".join(lines), {"evidence_ids": {"incident": [str(r["id"]) for r in rows]}}, f"{len(rows)} incidents"
        )

    params = obj(
        {
            "incident_id": {"type": "integer", "minimum": 1},
            "status": {"type": "string", "enum": list(STATUSES)},
            "unit": UNIT,
            "limit": {"type": "integer", "minimum": 1, "maximum": 25},
        }
    )
    return [
        Tool(
            "incident_history",
            "Recent incidents (filter by status or unit), or one incident by id with "
            "its triggers, findings and actions.",
            params,
            handler,
        )
    ]
