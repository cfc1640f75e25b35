"""The autonomy policy: one pure function from the facts to a decision and its reason.

    decide(autonomy, risk, protected=..., paused=..., rate_limited=..., cooling_down=..., breaker_open=...)

Inputs are facts the caller established from the catalog (risk), its own configuration
(autonomy level, protected units, limits) and the database (pause, counters, breakers);
nothing here comes from a model.  The order of the rules is the policy:

1. a protected unit is refused, at every level;
2. `observe` records only;
3. a global pause queues everything for a person;
4. high risk always waits for a person;
5. `suggest` queues everything;
6. `auto-safe` runs low risk, `auto-full` low and medium -- unless the proposal is not
   bound to its incident (`unbound`: a target outside the incident's evidence, parameters
   outside the bounds for unattended runs; actions/binding.py), the target's breaker is
   open, it is cooling down after the last action, or a rate limit is reached: then it
   is queued for a person, with that reason.

The executor calls the same function with its own facts before it runs an action that
no person approved, so the row's recorded decision is never trusted on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ai_sysadmin.actions.types import PolicyDecision
from ai_sysadmin.config import unit_is_protected

AUTO_RISKS = {"observe": (), "suggest": (), "auto-safe": ("low",), "auto-full": ("low", "medium")}


@dataclass(frozen=True)
class Decision:
    decision: PolicyDecision
    reason: str


def decide(
    autonomy: str,
    risk: str,
    *,
    protected: bool = False,
    paused: bool = False,
    rate_limited: str | None = None,
    cooling_down: str | None = None,
    breaker_open: str | None = None,
    target: str = "",
    unbound: str | None = None,
) -> Decision:
    """`rate_limited`, `cooling_down`, `breaker_open`, `unbound`: None, or the reason in words."""
    if autonomy not in AUTO_RISKS:
        raise ValueError(f"unknown autonomy level {autonomy!r}")
    if risk not in ("low", "medium", "high"):
        raise ValueError(f"unknown risk {risk!r}")
    what = f" {target}" if target else ""
    if protected:
        return Decision(PolicyDecision.REFUSE, f"protected unit{what}: never acted on")
    if autonomy == "observe":
        return Decision(PolicyDecision.RECORD, "autonomy level observe: recorded only")
    if paused:
        return Decision(PolicyDecision.QUEUE, "actions are paused: queued for a person")
    if risk == "high":
        return Decision(PolicyDecision.QUEUE, "high risk: always waits for a person")
    if risk not in AUTO_RISKS[autonomy]:
        return Decision(PolicyDecision.QUEUE, f"{risk} risk at autonomy level {autonomy}: queued for a person")
    for blocked in (unbound, breaker_open, cooling_down, rate_limited):
        if blocked:
            return Decision(PolicyDecision.QUEUE, f"{blocked}: queued for a person")
    return Decision(PolicyDecision.EXECUTE, f"{risk} risk at autonomy level {autonomy}: runs automatically")


def canonical_unit(unit: str) -> str:
    """`sshd` and `sshd.service` are the same unit to systemctl."""
    return unit if "." in unit else f"{unit}.service"


def is_protected(unit: str | None, protected_units: Iterable[str], patterns: Iterable[str] = ()) -> bool:
    """Exact names (with or without .service), globs, templates, or patterns such as `llama-*`.

    One matcher for the whole service (config.unit_is_protected), so the policy, the
    executor and the review's candidates cannot disagree about what is protected.
    """
    if unit is None:
        return False
    return unit_is_protected(unit, [*(canonical_unit(u) for u in protected_units), *patterns])
