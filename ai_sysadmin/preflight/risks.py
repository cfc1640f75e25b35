"""Risk flags, each with its evidence.  Pure functions of what the other modules found.

Severities (what each does to the verdict, docs/preflight.md):
* block -- a protected unit is stopped for good; a person's account is removed;
* warn  -- a protected unit is restarted (or stopped and started); a system user or a
           group is removed; the store's free space is below what the closure adds;
* info  -- reboot needed, PID 1 re-executed, a check that could not run.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ai_sysadmin.preflight.accounts import AccountChanges
from ai_sysadmin.preflight.closure import ClosureDiff
from ai_sysadmin.preflight.system import LinkChange
from ai_sysadmin.preflight.units import DISRUPTIVE, PlannedUnit, UnitAction


class Severity(str, enum.Enum):
    INFO = "info"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True)
class RiskFlag:
    kind: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


def protected_units(planned: list[PlannedUnit], is_protected: Callable[[str], bool]) -> list[RiskFlag]:
    out = []
    for p in planned:
        if p.action not in DISRUPTIVE or not is_protected(p.unit):
            continue
        removed = p.action is UnitAction.STOP
        out.append(
            RiskFlag(
                "protected-unit-removed" if removed else "protected-unit-restarted",
                Severity.BLOCK if removed else Severity.WARN,
                (
                    f"protected unit {p.unit} is stopped and not in the new system"
                    if removed
                    else f"protected unit {p.unit} is restarted by the switch ({p.action.value})"
                ),
                {"unit": p.unit, "action": p.action.value, "reason": p.reason},
            )
        )
    return out


def accounts(changes: AccountChanges | None) -> list[RiskFlag]:
    if changes is None:
        return [
            RiskFlag(
                "accounts-unknown",
                Severity.INFO,
                "users and groups not compared: a system has no users-groups.json in its activation script",
            )
        ]
    evidence = {"current": changes.current_spec, "new": changes.new_spec}
    out = []
    for u in changes.removed_users:
        out.append(
            RiskFlag(
                "user-removed",
                Severity.WARN if u.system else Severity.BLOCK,
                f"{'system ' if u.system else ''}user {u.name} is no longer declared",
                {"user": u.name, "isSystemUser": u.system, **evidence},
            )
        )
    for g in changes.removed_groups:
        out.append(
            RiskFlag("group-removed", Severity.WARN, f"group {g} is no longer declared", {"group": g, **evidence})
        )
    return out


def reboot(changed: list[LinkChange], reexec: list[LinkChange]) -> list[RiskFlag]:
    out = []
    if changed:
        out.append(
            RiskFlag(
                "reboot-needed",
                Severity.INFO,
                f"reboot needed: {', '.join(c.name for c in changed)} changed",
                {c.name: {"from": c.before, "to": c.after} for c in changed},
            )
        )
    for c in reexec:
        out.append(
            RiskFlag(
                "systemd-changed",
                Severity.INFO,
                "systemd changed: the switch re-executes PID 1 (a reboot makes it certain)",
                {"from": c.before, "to": c.after},
            )
        )
    return out


def store_space(diff: ClosureDiff) -> list[RiskFlag]:
    if diff.store_free_bytes is None or diff.added_bytes <= 0 or diff.store_free_bytes >= diff.added_bytes:
        return []
    return [
        RiskFlag(
            "store-space",
            Severity.WARN,
            f"the Nix store has {_mib(diff.store_free_bytes)} free, less than the "
            f"{_mib(diff.added_bytes)} this closure adds (the old generation keeps its paths)",
            {"free_bytes": diff.store_free_bytes, "added_bytes": diff.added_bytes},
        )
    ]


def unavailable(kind: str, why: str) -> RiskFlag:
    return RiskFlag(kind, Severity.INFO, why)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def ssh_firewall(
    sessions: dict[int, str], current: dict[int, PortStateLike], new: dict[int, PortStateLike]
) -> list[RiskFlag]:
    """Block when the new firewall no longer accepts the port of an active SSH session
    that the current one accepts; a side that cannot be read is a note."""
    out = []
    for port, seen in sorted(sessions.items()):
        cur, nxt = current[port], new[port]
        if cur.allowed is None or nxt.allowed is None:
            why = cur.why if cur.allowed is None else nxt.why
            out.append(
                RiskFlag(
                    "firewall-unchecked",
                    Severity.INFO,
                    f"firewall not checked for the SSH session on port {port}: {why}",
                )
            )
        elif cur.allowed and not nxt.allowed:
            out.append(
                RiskFlag(
                    "firewall-closes-ssh",
                    Severity.BLOCK,
                    f"the new firewall no longer allows TCP port {port}, the port of an active SSH session",
                    {"port": port, "session": seen, "current": list(cur.evidence) or [cur.why], "new": nxt.why},
                )
            )
    return out


class PortStateLike(Protocol):
    @property
    def allowed(self) -> bool | None: ...
    @property
    def why(self) -> str: ...
    @property
    def evidence(self) -> tuple[str, ...]: ...
