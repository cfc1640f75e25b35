"""unit_dependencies: what a unit needs, what needs it, and its ordering."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import UNIT, Tool, ToolOutput, obj

FORWARD = ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "After", "Before", "TriggeredBy")
REVERSE = ("RequiredBy", "RequisiteOf", "WantedBy", "BoundBy", "ConsistsOf", "Triggers")


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        props = REVERSE if args.get("reverse") else FORWARD
        deps = await ctx.host.unit_dependencies(args["unit"], props)
        if not deps:
            return ToolOutput(
                f"{args['unit']}: no {'reverse ' if args.get('reverse') else ''}dependencies", {"dependencies": {}}
            )
        text = "\n".join(f"{k}: {' '.join(v)}" for k, v in deps.items())
        return ToolOutput(text, {"dependencies": deps}, f"{args['unit']}: {sum(map(len, deps.values()))} deps")

    params = obj(
        {"unit": UNIT, "reverse": {"type": "boolean", "description": "units that depend on this one"}}, ("unit",)
    )
    return [
        Tool(
            "unit_dependencies",
            "Dependencies of a systemd unit (Requires, Wants, After, ...), or with "
            "reverse=true the units that depend on it.",
            params,
            handler,
        )
    ]
