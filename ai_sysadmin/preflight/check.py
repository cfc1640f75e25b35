"""From two system paths to one report: the composition of the preflight modules."""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ai_sysadmin.preflight import accounts, closure, firewall, risks, ssh, units
from ai_sysadmin.preflight.risks import RiskFlag, Severity
from ai_sysadmin.preflight.system import REBOOT_LINKS, REEXEC_LINKS, changed_links, open_system
from ai_sysadmin.preflight.verdict import Decision, Verdict, decide


class SwitchAction(str, enum.Enum):
    """switch-to-configuration's verbs that a pre-switch check sees."""

    SWITCH = "switch"
    BOOT = "boot"
    TEST = "test"
    DRY_ACTIVATE = "dry-activate"
    CHECK = "check"  # switch-to-configuration-ng's verb that runs only the pre-switch checks: judged as switch

    @property
    def activates(self) -> bool:
        """Whether units change now (boot only installs the boot entry)."""
        return self is not SwitchAction.BOOT


@dataclass(frozen=True)
class Report:
    new: str
    current: str | None
    action: SwitchAction
    decision: Decision
    flags: tuple[RiskFlag, ...]
    units: tuple[units.PlannedUnit, ...]
    closure: closure.ClosureDiff | None
    elapsed_s: float
    model: Any = None  # preflight.summary.ModelSummary when the review model was asked

    @property
    def verdict(self) -> Verdict:
        return self.decision.verdict

    def to_json(self) -> dict[str, Any]:
        diff = self.closure
        return {
            "verdict": self.verdict.value,
            "exit_code": self.verdict.exit_code,
            "reasons": list(self.decision.reasons),
            "action": self.action.value,
            "new": self.new,
            "current": self.current,
            "reboot_needed": any(f.kind == "reboot-needed" for f in self.flags),
            "flags": [{**asdict(f), "severity": f.severity.value} for f in self.flags],
            "units": [{"unit": u.unit, "action": u.action.value, "reason": u.reason} for u in self.units],
            "closure": None
            if diff is None
            else {
                "added_bytes": diff.added_bytes,
                "net_bytes": diff.net_bytes,
                "store_free_bytes": diff.store_free_bytes,
                "changes": [
                    {
                        "package": c.package,
                        "kind": c.kind,
                        "from": list(c.before),
                        "to": list(c.after),
                        "size_delta_bytes": c.size_delta,
                    }
                    for c in diff.changes
                ],
            },
            "model": None if self.model is None else self.model.to_json(),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def run_preflight(
    new_path: str,
    current_path: str,
    action: SwitchAction,
    is_protected: Callable[[str], bool],
    nix: str = "nix",
    env: Mapping[str, str] | None = None,
    proc_net: Path = Path("/proc/net"),
    extra_flags: Callable[[list[units.PlannedUnit], closure.ClosureDiff | None], list[RiskFlag]] | None = None,
) -> Report:
    """Judge switching from `current_path` to `new_path`.  Raises PreflightInputError."""
    t0 = time.monotonic()
    new = open_system(new_path, "new system")
    if not os.path.lexists(current_path):
        # First activation (nixos-install): nothing runs yet that a switch could break.
        note = RiskFlag("no-current-system", Severity.INFO, f"{current_path} does not exist: nothing to compare")
        return Report(str(new.real), None, action, decide([]), (note,), (), None, time.monotonic() - t0)
    current = open_system(current_path, "current system")

    flags: list[RiskFlag] = []
    planned: list[units.PlannedUnit] = []
    if action.activates:
        planned = units.plan(current.units_dir, new.units_dir)
        flags += risks.protected_units(planned, is_protected)
        flags += _ssh_firewall(current.real, new.real, os.environ if env is None else env, proc_net)
    flags += risks.accounts(accounts.removed(current, new))
    flags += risks.reboot(changed_links(current, new, REBOOT_LINKS), changed_links(current, new, REEXEC_LINKS))

    diff: closure.ClosureDiff | None = None
    try:
        diff = closure.diff_closures(nix, str(current.real), str(new.real), str(new.store_dir))
        flags += risks.store_space(diff)
    except closure.ClosureUnavailable as exc:
        flags.append(risks.unavailable("closure-unavailable", str(exc)))

    if extra_flags is not None:  # the incident history (preflight/history.py), when a database is configured
        flags += extra_flags(planned, diff)

    if action is SwitchAction.DRY_ACTIVATE:
        # dry-activate changes nothing: report what a switch would do, decide nothing.
        flags = [replace(f, severity=Severity.INFO) for f in flags]
    return Report(
        str(new.real),
        str(current.real),
        action,
        decide(flags),
        tuple(flags),
        tuple(planned),
        diff,
        time.monotonic() - t0,
    )


def _ssh_firewall(current: Path, new: Path, env: Mapping[str, str], proc_net: Path) -> list[RiskFlag]:
    sessions = ssh.session_ports(env, proc_net, ssh.sshd_ports(current))
    if not sessions:
        return []
    cur_dir, new_dir = current / "etc/systemd/system", new / "etc/systemd/system"
    return risks.ssh_firewall(
        sessions,
        {p: firewall.tcp_port_allowed(cur_dir, p) for p in sessions},
        {p: firewall.tcp_port_allowed(new_dir, p) for p in sessions},
    )
