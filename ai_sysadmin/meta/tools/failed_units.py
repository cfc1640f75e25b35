"""failed_units: every unit systemd reports as failed."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolOutput, obj


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        units = await ctx.host.failed_units()
        if not units:
            return ToolOutput("no failed units", {"units": []}, "0 failed units")
        text = "\n".join(f"{u['unit']} {u['load']} {u['active']} {u['sub']} {u['description']}" for u in units)
        return ToolOutput(text, {"units": units}, f"{len(units)} failed: " + ", ".join(u["unit"] for u in units[:5]))

    return [Tool("failed_units", "List the systemd units that are in the failed state.", obj({}), handler)]
