"""metrics_query: the metric store -- which series exist, and one series over a range, aggregated."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj

DURATION = r"^[0-9]{1,4}(s|m|h|d)$"
MAX_BUCKETS = 120
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
AGGREGATES = {
    "avg": "avg(value)",
    "min": "min(value)",
    "max": "max(value)",
    "last": "(array_agg(value ORDER BY ts DESC))[1]",
}
PARAMS = obj(
    {
        "name": {
            "type": "string",
            "pattern": r"^[a-z][a-z0-9_.]{0,80}$",
            "description": "series name, e.g. disk.used_percent; omit to list the series",
        },
        "subject": {
            "type": "string",
            "maxLength": 200,
            "pattern": r"^[^\x00-\x1f\x7f]*$",
            "description": "what the series is about: a mount point, a unit, '' for the host",
        },
        "since": {"type": "string", "pattern": DURATION, "description": "how far back, e.g. 30m, 6h, 2d (default 1h)"},
        "step": {"type": "string", "pattern": DURATION, "description": "bucket width, e.g. 5m (default: automatic)"},
        "aggregate": {"type": "string", "enum": list(AGGREGATES), "description": "per bucket (default avg)"},
    }
)


def seconds(spec: str) -> int:
    return int(spec[:-1]) * UNITS[spec[-1]]


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        span = seconds(args.get("since", "1h"))
        if span <= 0 or span > 90 * 86400:
            raise ToolError("invalid argument since: must be between 1s and 90d")
        if "name" not in args:
            return _series(await ctx.host.metric_series(span))
        step = seconds(args["step"]) if "step" in args else max(1, span // 60)
        step = max(step, span // MAX_BUCKETS, 1)
        rows = await ctx.host.metric_points(args["name"], args.get("subject"), span, step, args.get("aggregate", "avg"))
        if not rows:
            return ToolOutput(
                f"no samples of {args['name']} in the last {args.get('since', '1h')} "
                "(call without name to list the series)",
                {"points": 0},
                "0 points",
            )
        lines = [f"{args['name']} per {step}s ({args.get('aggregate', 'avg')}):"]
        lines += [f"{b:%Y-%m-%d %H:%M:%S} {s or '(host)'} {v:.4g}" for b, s, v, _ in rows]
        values = [float(r[2]) for r in rows]
        return ToolOutput(
            "\n".join(lines),
            {"points": len(rows)},
            f"{len(rows)} points, min {min(values):.4g} max {max(values):.4g} last {values[-1]:.4g}",
        )

    return [
        Tool(
            "metrics_query",
            "Host metrics from the store: omit name to list series; with name, the series "
            "over a range in buckets (avg/min/max/last).",
            PARAMS,
            handler,
            narrow_hint="give a subject, a shorter since or a larger step",
        )
    ]


def _series(rows: list[Any]) -> ToolOutput:
    if not rows:
        return ToolOutput("no metric samples in that range", {"series": 0}, "0 series")
    lines = ["name subject samples min max last"]
    lines += [f"{n} {s or '(host)'} {c} {lo:.4g} {hi:.4g} {last:.4g}" for n, s, c, lo, hi, last in rows]
    return ToolOutput("\n".join(lines), {"series": len(rows)}, f"{len(rows)} series")
