"""top_processes: the processes using the most CPU or memory."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psutil

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolOutput, obj

SAMPLE_SECONDS = 0.5  # CPU percent is a rate: measured over this window


def top(sort_by: str, limit: int) -> list[dict[str, Any]]:
    procs = list(psutil.process_iter(["pid", "name", "username", "memory_info", "cmdline"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(SAMPLE_SECONDS)  # a measurement window, not synchronisation
    rows = []
    for p in procs:
        try:
            cpu = p.cpu_percent(None)
            info = p.info
            rss = info["memory_info"].rss if info.get("memory_info") else 0
            cmd = " ".join(info.get("cmdline") or []) or info.get("name") or "?"
            rows.append(
                {
                    "pid": info["pid"],
                    "user": info.get("username") or "?",
                    "cpu_percent": round(cpu, 1),
                    "rss": rss,
                    "command": cmd[:160],
                }
            )
        except psutil.Error:
            continue
    key = (lambda r: r["cpu_percent"]) if sort_by == "cpu" else (lambda r: r["rss"])
    rows.sort(key=key, reverse=True)
    return rows[:limit]


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        rows = await ctx.host.processes(args.get("sort_by", "memory"), args.get("limit", 10))
        lines = ["pid user cpu% rss_mb command"]
        lines += [
            f"{r['pid']} {r['user']} {r['cpu_percent']} {r['rss'] / 1048576:.1f} {r['command']}"
            + (f" (unit {r['unit']})" if r.get("unit") else "")
            for r in rows
        ]
        top = rows[0] if rows else None
        return ToolOutput(
            "\n".join(lines), {"processes": rows}, f"{len(rows)} processes" + (f", top pid {top['pid']}" if top else "")
        )

    params = obj(
        {
            "sort_by": {"type": "string", "enum": ["memory", "cpu"]},
            "limit": {"type": "integer", "minimum": 1, "maximum": 25},
        }
    )
    return [Tool("top_processes", "The processes using the most memory (default) or CPU.", params, handler)]
