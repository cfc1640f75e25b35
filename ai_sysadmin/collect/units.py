"""Per-unit state from systemd (`systemctl list-units`), or a clear 'not available'.

In a container without systemd as PID 1 there is no unit state to read; the
collector then reports that once and carries on with host metrics.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field


@dataclass(frozen=True)
class UnitStates:
    available: bool
    reason: str = ""
    states: dict[str, str] = field(default_factory=dict)  # unit -> ActiveState

    @property
    def failed(self) -> list[str]:
        return sorted(u for u, s in self.states.items() if s == "failed")


def systemd_running() -> bool:
    # sd_booted(3): this directory exists iff systemd is the init system.
    return os.path.isdir("/run/systemd/system")


def read_units(timeout: float = 10.0) -> UnitStates:
    if shutil.which("systemctl") is None:
        return UnitStates(False, "systemctl not found")
    if not systemd_running():
        return UnitStates(False, "systemd is not PID 1 here (container or non-systemd init): no unit state")
    try:
        r = subprocess.run(
            [
                "systemctl",
                "list-units",
                "--all",
                "--plain",
                "--no-legend",
                "--no-pager",
                "--type=service,socket,timer,mount",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return UnitStates(False, f"systemctl did not answer within {timeout:g}s")
    if r.returncode != 0:
        return UnitStates(False, f"systemctl failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    return UnitStates(True, states=parse_list_units(r.stdout))


def parse_list_units(text: str) -> dict[str, str]:
    """`UNIT LOAD ACTIVE SUB DESCRIPTION` lines -> unit: ACTIVE."""
    states = {}
    for line in text.splitlines():
        parts = line.split(None, 4)
        if len(parts) >= 4:
            states[parts[0]] = parts[2]
    return states
