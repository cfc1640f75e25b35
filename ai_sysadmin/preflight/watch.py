"""A switch, seen after the fact: which system is running now, and what the switch to it did.

The running system is the target of `actions.current_system` (/run/current-system):
the activation script of every NixOS generation re-points it, so a changed target is a
switch (switch, test, a rollback; `boot` does not change it and is no switch until the
reboot).  Its generation number is the system profile's `system-N-link` that points at
the same store path (none for `nixos-rebuild test` or a path outside the profile).

`judge` runs the preflight core in-process on the old and the new system (closure diff,
unit plan, verdict), the same report `ai-sysadmin preflight` gives before a switch.
`touched` is what the switch started, restarted, reloaded or changed: the units whose
new failures the watch attributes to it.  `proof` puts the evidence in words for the
rollback proposal a person approves.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.actions.verification import _generation
from ai_sysadmin.preflight.check import SwitchAction, run_preflight
from ai_sysadmin.preflight.system import PreflightInputError
from ai_sysadmin.preflight.units import UnitAction

# A unit the switch stopped for good cannot fail anew; every other planned unit was
# started, restarted, reloaded or changed by it.
_NOT_TOUCHING = frozenset({UnitAction.STOP.value})
ARROW, EMPTY = "\u2192", "\u2205"  # → and ∅, as nix store diff-closures prints them
PROOF_CHANGES = 8  # closure changes named in a proposal's reason (all are in the switch's row)


@dataclass(frozen=True)
class Running:
    """The running system: its store path, when the link was made, its generation (None: not in the profile)."""

    path: str
    since: datetime
    generation: int | None


def running(current_system: str, system_profile: str) -> Running | None:
    """Read the current-system link; None when it does not exist (not NixOS, first boot)."""
    try:
        st = os.lstat(current_system)
    except OSError:
        return None
    path = os.path.realpath(current_system)
    _, gens = _generation(system_profile)
    gen = max((n for n, target in gens.items() if target == path), default=None)
    return Running(path, datetime.fromtimestamp(st.st_mtime, UTC), gen)


def rollback_target(system_profile: str, generation: int) -> int | None:
    """The generation `nix-env --rollback` goes to from `generation`: the highest number below it."""
    _, gens = _generation(system_profile)
    return max((n for n in gens if n < generation), default=None)


def judge(old: str, new: str, is_protected: Callable[[str], bool], nix: str = "nix") -> dict[str, Any]:
    """The preflight report of switching old -> new, as JSON; an error report when either is no system."""
    try:
        return run_preflight(new, old, SwitchAction.SWITCH, is_protected, nix).to_json()
    except PreflightInputError as exc:
        return {"verdict": None, "error": str(exc), "units": [], "closure": None, "reasons": []}


def touched(report: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(u["unit"] for u in report.get("units") or [] if u.get("action") not in _NOT_TOUCHING))


def proof(sw: dict[str, Any], units: list[str]) -> str:
    """The evidence for rolling back, in words: generation pair, what failed and how the switch touched it,
    the closure diff.  `sw` is an attribution row joined with its switch (store/switches.py)."""
    report = sw.get("preflight") or {}
    plan = {u["unit"]: u for u in report.get("units") or []}
    at = sw["switched_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    parts = [
        f"switch generation {_gen(sw['from_generation'])} {ARROW} {_gen(sw['to_generation'])} at {at} "
        f"(preflight {sw.get('verdict') or 'not judged'}): {sw['to_path']}"
    ]
    for u in units:
        p = plan.get(u, {})
        parts.append(f"{u} failed after it ({p.get('action', 'changed')}: {p.get('reason', 'in the unit plan')})")
    diff = report.get("closure")
    if diff is None:
        parts.append(f"closure diff unavailable ({_flag(report, 'closure-unavailable') or 'not computed'})")
    else:
        changes = diff.get("changes") or []
        named = ", ".join(
            f"{c['package']} {','.join(c['from']) or EMPTY} {ARROW} {','.join(c['to']) or EMPTY}"
            for c in changes[:PROOF_CHANGES]
        )
        more = f" and {len(changes) - PROOF_CHANGES} more" if len(changes) > PROOF_CHANGES else ""
        parts.append(f"closure: {len(changes)} package change(s){': ' + named if named else ''}{more}")
    return "; ".join(parts)


def _gen(n: int | None) -> str:
    return "?" if n is None else str(n)


def _flag(report: dict[str, Any], kind: str) -> str | None:
    return next((f["message"] for f in report.get("flags") or [] if f.get("kind") == kind), None)
