"""Whether a model's proposal is bound to its incident: the one place L3 and L4 are checked.

A proposal from a model (the review, an investigation, a chat) is shaped by text that
anyone on the host may have written: a request field an application logs, a forged
journal line.  The catalog already validates its shape; this decides whether it may run
*unattended*.  It may only when

1. every unit it names is one of its incident's units -- the units the incident's
   trusted evidence names (trigger/entry.py, incidents/correlate.py `all_units`, stored
   as `incidents.units`), so text cannot pick a target; a proposal with no incident has
   no evidence and names no unit it may act on alone; and
2. its parameters keep what the policy's bounds say they keep (`actions.auto_min_*`):
   a garbage collection at least N days of generations, a journal vacuum at least N MiB
   and N days.

Otherwise `unbound` returns the reason and the policy (policy.decide) queues the
proposal for a person with it: a person may still approve it, nothing runs on its own.
A person's own proposals (CLI, API) and the deterministic candidates (built from the
trusted evidence, with fixed parameters inside the bounds) are not model output and
are not checked here.
"""

from __future__ import annotations

from typing import Iterable

from ai_sysadmin.actions.catalog import ValidatedAction
from ai_sysadmin.actions.policy import canonical_unit
from ai_sysadmin.config import ActionsConfig

MODEL_SOURCES = frozenset({"review", "meta", "chat"})
NOT_IN_EVIDENCE = "target not in the incident's evidence"


def unbound(va: ValidatedAction, source: str, evidence_units: Iterable[str] | None,
            bounds: ActionsConfig) -> str | None:
    """None when `va` may run unattended as far as binding goes, else the reason in words.

    `evidence_units`: the units of the proposal's incident (None: no incident, or unknown).
    """
    if source not in MODEL_SOURCES:
        return None
    if va.unit is not None:
        allowed = {canonical_unit(u) for u in evidence_units or ()}
        if canonical_unit(va.unit) not in allowed:
            return f"{NOT_IN_EVIDENCE} ({va.unit})"
    return out_of_bounds(va, bounds)


def out_of_bounds(va: ValidatedAction, bounds: ActionsConfig) -> str | None:
    """The first parameter outside the bounds for unattended runs, as a reason; None when inside."""
    p = va.params
    checks: tuple[tuple[str, str, int, str, str], ...] = (
        ("collect_garbage", "older_than_days", bounds.auto_min_gc_days, "days", "auto_min_gc_days"),
        ("vacuum_journal", "max_size_mb", bounds.auto_min_journal_mb, "MiB", "auto_min_journal_mb"),
        ("vacuum_journal", "max_age_days", bounds.auto_min_journal_days, "days", "auto_min_journal_days"),
    )
    for action, name, minimum, what, key in checks:
        if va.id == action and name in p and int(p[name]) < minimum:
            return (f"{name}={int(p[name])} keeps less than the {minimum} {what} allowed unattended "
                    f"(actions.{key})")
    return None
