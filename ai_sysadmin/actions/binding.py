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

A proposal that *contradicts* its incident's evidence -- an action that is not among the
actions the evidence supports (the incident's deterministic candidates and their
families, `notify`, and a rollback when the incident is attributed to a switch), or a
unit the evidence does not name -- is also marked as such (`contradicts`: stored on the
action row, shown by `actions list/show` and the REST API), so a person sees at a glance
that what a model asked for is not what the incident shows.  The review itself can only
choose among candidates; this is where L4's `propose_action` and chat are caught.
A person's own proposals (CLI, API) and the deterministic candidates (built from the
trusted evidence, with fixed parameters inside the bounds) are not model output and
are not checked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ai_sysadmin.actions.catalog import ValidatedAction
from ai_sysadmin.actions.policy import canonical_unit
from ai_sysadmin.config import ActionsConfig

MODEL_SOURCES = frozenset({"review", "meta", "chat"})
NOT_IN_EVIDENCE = "target not in the incident's evidence"


NOT_SUPPORTED = "action not among those the incident's evidence supports"
ALWAYS_SUPPORTED = frozenset({"notify"})


@dataclass(frozen=True)
class Evidence:
    """What an incident's trusted evidence names: its units, and the actions it supports
    (None: not known, e.g. an incident recorded before they were; then only units count)."""

    units: frozenset[str]
    actions: frozenset[str] | None = None


def _evidence(found: Evidence | Iterable[str] | None) -> Evidence | None:
    if found is None or isinstance(found, Evidence):
        return found
    return Evidence(frozenset(found))  # a plain set of units (replay, older callers)


def contradicts(va: ValidatedAction, source: str, found: Evidence | Iterable[str] | None) -> str | None:
    """Why a model's proposal contradicts its incident's evidence, in words; None when it does not.

    Only a proposal *with* an incident can contradict it: `found` None (no incident) is
    not a contradiction (a unit action without an incident is still unbound, see below).
    """
    ev = _evidence(found)
    if source not in MODEL_SOURCES or ev is None:
        return None
    if ev.actions is not None and va.id not in ev.actions | ALWAYS_SUPPORTED:
        return f"{NOT_SUPPORTED} ({va.id}; supported: {', '.join(sorted(ev.actions | ALWAYS_SUPPORTED))})"
    if va.unit is not None and canonical_unit(va.unit) not in {canonical_unit(u) for u in ev.units}:
        return f"{NOT_IN_EVIDENCE} ({va.unit})"
    return None


def unbound(
    va: ValidatedAction, source: str, found: Evidence | Iterable[str] | None, bounds: ActionsConfig
) -> str | None:
    """None when `va` may run unattended as far as binding goes, else the reason in words.

    `found`: the evidence of the proposal's incident (None: no incident, or unknown).
    """
    if source not in MODEL_SOURCES:
        return None
    reason = contradicts(va, source, found)
    if reason is not None:
        return reason
    if va.unit is not None and found is None:
        return f"{NOT_IN_EVIDENCE} ({va.unit})"  # no incident: no evidence names any unit
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
            return f"{name}={int(p[name])} keeps less than the {minimum} {what} allowed unattended (actions.{key})"
    return None
