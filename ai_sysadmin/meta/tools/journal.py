"""journal_query: journal entries by unit, priority, time, pattern and boot (`journalctl -o json`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import LIMIT, TIME, UNIT, Tool, ToolOutput, obj

PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
# Small models fill `priority` from the incident's severity ("critical", "high") or write
# "error": measured with Qwen2.5-Coder-1.5B, whose first journal call failed on that in most
# investigations and was then repeated as is.  Those words are accepted and mean this.
PRIORITY_ALIASES = {
    "critical": "crit",
    "high": "err",
    "error": "err",
    "medium": "warning",
    "warn": "warning",
    "low": "notice",
}
PARAMS = obj(
    {
        "unit": UNIT,
        "priority": {
            "type": "string",
            "enum": [*PRIORITIES, *PRIORITY_ALIASES],
            "description": "this priority and more severe (err includes crit, alert, emerg); "
            "a severity word is read as critical=crit, high=err, medium=warning, low=notice",
        },
        "since": TIME,
        "until": TIME,
        "grep": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": r"^[^\x00-\x1f\x7f]+$",
            "description": "regular expression the MESSAGE must match",
        },
        "boot": {
            "type": "string",
            "pattern": r"^(0|-[0-9]{1,3}|[0-9a-f]{32})$",
            "description": "0 = current boot, -1 = previous, or a boot id",
        },
        "lines": {**LIMIT, "description": "newest N entries (default 50)"},
    }
)


def source_args(cfg: Config) -> list[str]:
    """Where the service reads its journal from, as journalctl options."""
    j = cfg.journal
    if j.source == "file" and j.path:
        return [f"--file={j.path}"]
    if j.source == "directory" and j.path:
        return [f"--directory={j.path}"]
    return []


def argv(cfg: Any, args: dict[str, Any], source: list[str] | None = None) -> list[str]:
    """journalctl's argv for validated `args`; `source`: where to read (default the service's own
    journal; a member's files on a hub: meta.tools.member)."""
    src = source_args(cfg) if source is None else source
    out = ["journalctl", *src, "--no-pager", "--output=json", f"--lines={args.get('lines', 50)}"]
    if "unit" in args:
        out.append(f"--unit={args['unit']}")
    if "priority" in args:
        out.append(f"--priority={args['priority']}")
    for key in ("since", "until", "grep", "boot"):
        if key in args:
            out.append(f"--{key}={args[key]}")
    return out


def _text(value: Any) -> str:
    if isinstance(value, list):  # journald sends non-UTF-8 / binary fields as byte arrays
        return bytes(v & 0xFF for v in value if isinstance(v, int)).decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def render(entry: dict[str, Any]) -> str:
    try:
        ts = datetime.fromtimestamp(int(entry.get("__REALTIME_TIMESTAMP", 0)) / 1e6, UTC)
        when = ts.strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OverflowError):
        when = "?"
    unit = _text(entry.get("_SYSTEMD_UNIT") or entry.get("UNIT") or entry.get("SYSLOG_IDENTIFIER") or "-")
    pid = _text(entry.get("_PID"))
    prio = _text(entry.get("PRIORITY", "6"))
    msg = _text(entry.get("MESSAGE")).replace("\n", "\\n")
    return f"{when} {unit}{f'[{pid}]' if pid else ''} p{prio}: {msg}"


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        if "priority" in args:
            args = {**args, "priority": PRIORITY_ALIASES.get(args["priority"], args["priority"])}
        lines = [render(e) for e in await ctx.host.journal(args)]
        if not lines:
            return ToolOutput("no matching journal entries", {"entries": 0}, "0 entries")
        return ToolOutput("\n".join(lines), {"entries": len(lines)}, f"{len(lines)} entries")

    return [
        Tool(
            "journal_query",
            "Read journal entries (newest last), filtered by unit, priority, time range, message pattern and boot.",
            PARAMS,
            handler,
            narrow_hint="add unit, priority or grep, shorten since/until, or lower lines",
        )
    ]
