"""unit_status: the state of one systemd unit (`systemctl show` properties)."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import UNIT, Tool, ToolOutput, obj

PROPERTIES = (
    "Id",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "UnitFileState",
    "FragmentPath",
    "MainPID",
    "ExecMainStatus",
    "ExecMainCode",
    "NRestarts",
    "Restart",
    "ActiveEnterTimestamp",
    "InactiveEnterTimestamp",
    "StateChangeTimestamp",
    "MemoryCurrent",
    "CPUUsageNSec",
    "TasksCurrent",
    "User",
    "ConditionResult",
)


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        props = await ctx.host.unit_properties(args["unit"], PROPERTIES)
        if props.get("LoadState") == "not-found":
            return ToolOutput(
                f"unit {args['unit']} not found (LoadState=not-found)",
                {"properties": props},
                f"{args['unit']}: not found",
            )
        text = "\n".join(f"{k}={props[k]}" for k in PROPERTIES if k in props and props[k] != "")
        summary = f"{args['unit']}: {props.get('ActiveState', '?')}/{props.get('SubState', '?')}"
        if props.get("Result") not in (None, "", "success"):
            summary += f" result={props['Result']}"
        return ToolOutput(text, {"properties": props}, summary)

    return [
        Tool(
            "unit_status",
            "State of one systemd unit: active/sub state, result, restarts, main PID, memory, timestamps.",
            obj({"unit": UNIT}, ("unit",)),
            handler,
        )
    ]
