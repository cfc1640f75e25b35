"""failed_units: every unit systemd reports as failed."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj


def tools(ctx: Any) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        r = await ctx.runner.run(["systemctl", "list-units", "--state=failed", "--all", "--no-legend", "--plain",
                                  "--no-pager"])
        if r.timed_out or r.returncode != 0:
            raise ToolError(f"systemctl list-units: {(r.stderr.strip() or 'timed out')[:300]}")
        units = []
        for line in r.stdout.splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 4:
                units.append({"unit": parts[0], "load": parts[1], "active": parts[2], "sub": parts[3],
                              "description": parts[4] if len(parts) > 4 else ""})
        if not units:
            return ToolOutput("no failed units", {"units": []}, "0 failed units")
        text = "\n".join(f"{u['unit']} {u['load']} {u['active']} {u['sub']} {u['description']}" for u in units)
        return ToolOutput(text, {"units": units}, f"{len(units)} failed: " + ", ".join(u["unit"] for u in units[:5]))

    return [Tool("failed_units", "List the systemd units that are in the failed state.", obj({}), handler)]
