"""Trigger rows for the store's tests and benchmarks (tests/store/, bench/store_bench.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_sysadmin.trigger.model import Trigger, template_id, trigger_id

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def make_trigger(
    n: int,
    *,
    count: int = 1,
    unit: str | None = "nginx.service",
    at: datetime = T0,
    severity: str = "high",
    sample: list[str] | None = None,
) -> Trigger:
    template = f"worker <*> exited with status {n}"
    tid = template_id(template)
    return Trigger(
        id=trigger_id(tid, unit, at.replace(second=0), "rule:unit-failed"),
        severity=severity,
        category="unit-failure",
        source="rule:unit-failed",
        unit=unit,
        template=template,
        template_id=tid,
        count=count,
        first_seen=at,
        last_seen=at + timedelta(seconds=count),
        sample=sample if sample is not None else [f"worker 1 exited with status {n}"],
    )
