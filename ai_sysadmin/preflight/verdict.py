"""The verdict: ok | warn | block, with reasons, and the exit code it means."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ai_sysadmin.preflight.risks import RiskFlag, Severity


class Verdict(str, enum.Enum):
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"

    @property
    def exit_code(self) -> int:
        return {"ok": 0, "warn": 1, "block": 2}[self.value]


# Bad input (not a NixOS system, unreadable, bad arguments): distinct from any verdict.
EXIT_USAGE = 3


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]


def decide(flags: list[RiskFlag]) -> Decision:
    """The worst severity wins; the reasons are the messages of the flags that decided."""
    blocks = [f.message for f in flags if f.severity is Severity.BLOCK]
    if blocks:
        return Decision(Verdict.BLOCK, tuple(blocks))
    warns = [f.message for f in flags if f.severity is Severity.WARN]
    if warns:
        return Decision(Verdict.WARN, tuple(warns))
    return Decision(Verdict.OK, ())
