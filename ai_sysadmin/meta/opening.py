"""The opening evidence of an incident's investigation: the reads an administrator makes first.

Measured with Qwen2.5-Coder-1.5B (docs/eval.md, "L4 opening evidence"): offered fourteen
tools and an incident, the model spent most investigations on one malformed journal call
and its repeat, then diagnosed its own failed call instead of the host.  What to read
first follows from the incident alone -- its unit's journal and state; the disks for a
full disk; memory for an OOM kill; the generations after a switch -- so the loop makes
those calls itself, through the same toolset and envelope as the model's, before the
model's first turn.  The model starts from evidence it can cite (c1, c2) and spends its
turns on what the incident does not already say.

Only the incident's own deterministic fields (category, unit) choose the calls, never
text from the log or a model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ai_sysadmin.meta.tools.base import UNIT

MAX_OPENING_CALLS = 2
JOURNAL_LINES = 20  # enough for a unit's last start attempts; a small model's context is small

# A unit argument is offered only when the tools would accept it.
_UNIT = re.compile(str(UNIT["pattern"]))

# What a category's incident is about when it is not (only) a unit: the first read.
_BY_CATEGORY: dict[str, tuple[str, dict[str, Any]]] = {
    "disk-full": ("disk_usage", {}),
    "filesystem": ("disk_usage", {}),
    "oom": ("top_processes", {"sort_by": "memory", "limit": 8}),
    "resource": ("top_processes", {"sort_by": "memory", "limit": 8}),
    "nix": ("nixos_generations", {}),
}


def opening_calls(incident: Mapping[str, Any], offered: set[str] | frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
    """(tool, arguments) to run before the model's first turn, at most MAX_OPENING_CALLS,
    only of the `offered` tools."""
    calls: list[tuple[str, dict[str, Any]]] = []
    first = _BY_CATEGORY.get(str(incident.get("category") or ""))
    if first is not None:
        calls.append(first)
    unit = incident.get("unit")
    if isinstance(unit, str) and _UNIT.match(unit):
        calls.append(("journal_query", {"unit": unit, "lines": JOURNAL_LINES}))
        calls.append(("unit_status", {"unit": unit}))
    else:  # a host-wide incident (kernel, clock, network): what went wrong lately
        calls.append(("journal_query", {"priority": "err", "lines": JOURNAL_LINES}))
    return [c for c in calls if c[0] in offered][:MAX_OPENING_CALLS]
