"""What the executor checks after (and notes before) each action.

Each catalog action declares how it is verified (`ActionSpec.verified_by`); for that
declaration this module has a `before` snapshot (stored with the action as it starts
executing, so a restarted executor can still verify an interrupted one) where one is
needed, and a check that returns whether the action did what it is for.  Observations
come from the host: systemctl, journalctl, statvfs, the profile links.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ai_sysadmin.actions.catalog import ValidatedAction, Verification
from ai_sysadmin.actions.runner import run_argv
from ai_sysadmin.config import Config
from ai_sysadmin.store.triggers import severe_since

SETTLING = ("activating", "deactivating", "reloading", "refreshing")


def has_systemd() -> bool:
    return os.path.isdir("/run/systemd/system")


def is_nixos() -> bool:
    return os.path.exists("/etc/NIXOS") or (os.path.exists("/run/current-system") and has_systemd())


async def _out(argv: list[str], timeout: float = 30.0) -> tuple[int | None, str]:
    r = await run_argv(argv, timeout=timeout, cap=1 << 20)
    return r.exit_status, r.stdout + (("\n" + r.stderr) if r.stderr else "")


async def unit_props(unit: str, *props: str) -> dict[str, str]:
    _code, text = await _out(["systemctl", "show", *(f"--property={p}" for p in props), "--", unit])
    out: dict[str, str] = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            out[k] = v
    return out


async def unit_names(unit: str) -> tuple[str, ...]:
    """Every name systemd knows the unit by (aliases too), for the protected-unit check."""
    if not has_systemd():
        return ()
    p = await unit_props(unit, "Id", "Names")
    return tuple(dict.fromkeys([p.get("Id", ""), *p.get("Names", "").split()]).keys() - {""})


async def failed_units() -> list[str]:
    if not has_systemd():
        return []
    _code, text = await _out(["systemctl", "list-units", "--state=failed", "--plain", "--no-legend", "--all"])
    return sorted(line.split()[0] for line in text.splitlines() if line.strip())


_SIZE = re.compile(r"take up ([\d.]+)([KMGTPE]?)B?", re.I)


async def journal_usage() -> int | None:
    code, text = await _out(["journalctl", "--disk-usage"])
    m = _SIZE.search(text)
    if code != 0 or not m:
        return None
    mult = 1024 ** ("BKMGTPE".index(m.group(2).upper() or "B"))
    return int(float(m.group(1)) * mult)


JOURNAL_DIRS = ("/var/log/journal", "/run/log/journal")


def archived_journal_files() -> list[tuple[int, float]]:
    """(bytes on disk, mtime) of every archived journal file (system@..., user-1000@...)."""
    out = []
    for base in JOURNAL_DIRS:
        for root, _, names in os.walk(base):
            for name in names:
                if "@" in name and (name.endswith(".journal") or name.endswith(".journal~")):
                    try:
                        st = os.stat(os.path.join(root, name))
                    except OSError:
                        continue
                    out.append((st.st_blocks * 512, st.st_mtime))
    return out


def store_dir() -> str:
    return os.environ.get("NIX_STORE_DIR") or "/nix/store"


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _generation(profile: str) -> tuple[int | None, dict[int, str]]:
    """(current generation number, {n: target}) of a Nix profile."""
    d, base = os.path.split(profile)
    gens: dict[int, str] = {}
    pat = re.compile(rf"^{re.escape(base)}-(\d+)-link$")
    try:
        names = os.listdir(d)
    except OSError:
        return None, {}
    for name in names:
        m = pat.match(name)
        if m:
            gens[int(m.group(1))] = os.path.realpath(os.path.join(d, name))
    try:
        link = os.readlink(profile)
    except OSError:
        return None, gens
    m = pat.match(os.path.basename(link))
    return (int(m.group(1)) if m else None), gens


@dataclass
class Verifier:
    cfg: Config
    started_at: datetime | None = None
    conn: psycopg.AsyncConnection | None = None  # for "no new failure trigger"
    incident_id: int | None = None  # the action's incident: a rollback checks the units it attributed to a switch

    async def before(self, va: ValidatedAction) -> dict[str, Any]:
        """What the action's verification compares against, read before it runs."""
        snapshot = BEFORE.get(va.spec.verified_by)
        return await snapshot(self, va.params) if snapshot is not None else {}

    async def check(self, va: ValidatedAction, before: dict[str, Any], steps_ok: bool) -> dict[str, Any]:
        checks: list[dict[str, Any]] = [{"check": "every step exited 0", "passed": steps_ok}]
        checks += await CHECKS[va.spec.verified_by](self, va.params, before)
        return {"passed": all(c["passed"] for c in checks), "checks": checks}

    async def _before_restart(self, params: dict[str, Any]) -> dict[str, Any]:
        if not has_systemd():
            return {}
        return {"props": await unit_props(params["unit"], "ActiveState", "InvocationID", "NRestarts")}

    async def _before_vacuum(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"journal_bytes": await journal_usage()}

    async def _before_collect(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"store": store_dir(), "free_bytes": free_bytes(store_dir())}

    async def _before_rollback(self, params: dict[str, Any]) -> dict[str, Any]:
        a = self.cfg.actions
        cur, gens = _generation(a.system_profile)
        prev = max((n for n in gens if cur is not None and n < cur), default=None)
        return {
            "generation": cur,
            "target": os.path.realpath(a.system_profile),
            "expected_generation": prev,
            "expected_target": gens.get(prev) if prev is not None else None,
            "failed_units": await failed_units(),
        }

    async def _steps_only(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        return []

    async def _check_restart_unit(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        unit = params["unit"]
        window = self.cfg.actions.verify_window_seconds
        deadline = time.monotonic() + 120.0
        p = await unit_props(unit, "ActiveState", "SubState", "InvocationID", "NRestarts", "Result")
        while p.get("ActiveState") in SETTLING and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            p = await unit_props(unit, "ActiveState", "SubState", "InvocationID", "NRestarts", "Result")
        checks = [
            {"check": f"{unit} is active", "passed": p.get("ActiveState") == "active", "observed": p.get("ActiveState")}
        ]
        if not checks[0]["passed"]:
            return checks
        end = time.monotonic() + window
        stable = True
        while time.monotonic() < end:
            await asyncio.sleep(min(0.5, max(0.0, end - time.monotonic())))
            q = await unit_props(unit, "ActiveState", "InvocationID", "NRestarts")
            if (
                q.get("ActiveState") != "active"
                or q.get("InvocationID") != p.get("InvocationID")
                or q.get("NRestarts") != p.get("NRestarts")
            ):
                stable, p = False, q
                break
        checks.append(
            {
                "check": f"{unit} stayed active without restarting for {window:g}s",
                "passed": stable,
                "observed": p.get("ActiveState"),
            }
        )
        checks.append(await self._no_new_trigger(unit))
        return checks

    async def _no_new_trigger(self, unit: str) -> dict[str, Any]:
        if self.conn is None or self.started_at is None:
            return {"check": "no new failure trigger", "passed": True, "observed": "not checked (no database)"}
        n = await severe_since(self.conn, unit, self.started_at)
        return {"check": f"no new high/critical trigger for {unit}", "passed": n == 0, "observed": n}

    async def _check_reset_failed_unit(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        state = (await unit_props(params["unit"], "ActiveState")).get("ActiveState")
        return [
            {
                "check": f"{params['unit']} is not failed",
                "passed": state is not None and state != "failed",
                "observed": state,
            }
        ]

    async def _check_vacuum_journal(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        # journalctl only ever deletes *archived* files (names with "@"); the active ones it
        # has just rotated into are new and small, so the check is on the archived files.
        files = archived_journal_files()
        archived = sum(size for size, _ in files)
        checks = [
            {
                "check": "journalctl reports its disk usage",
                "passed": await journal_usage() is not None,
                "observed": {"before": before.get("journal_bytes"), "archived_after": archived},
            }
        ]
        if "max_size_mb" in params:
            limit = int(params["max_size_mb"]) * 1024 * 1024
            checks.append(
                {
                    "check": f"archived journal files take at most {params['max_size_mb']} MiB",
                    "passed": archived <= limit,
                    "observed": archived,
                }
            )
        if "max_age_days" in params:
            cutoff = time.time() - int(params["max_age_days"]) * 86400
            old = sum(1 for _, mtime in files if mtime < cutoff)
            checks.append(
                {
                    "check": f"no archived journal file older than {params['max_age_days']} days",
                    "passed": old == 0,
                    "observed": old,
                }
            )
        return checks

    async def _check_collect_garbage(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        after = free_bytes(before.get("store") or store_dir())
        b = before.get("free_bytes") or 0
        # Other writers share the file system: a fall of up to 1% (at most 64 MiB) is noise.
        slack = min(64 * 1024 * 1024, b // 100)
        return [
            {
                "check": "free space on the store's file system did not fall",
                "passed": after + slack >= b,
                "observed": {"before": b, "after": after, "freed": after - b},
            }
        ]

    async def _check_nix_store_repair(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        code, text = await _out(["nix-store", "--verify", "--check-contents"], timeout=3600)
        modified = [line for line in text.splitlines() if "was modified" in line or "is corrupt" in line]
        return [
            {
                "check": "nix-store --verify --check-contents exits 0 with no modified path",
                "passed": code == 0 and not modified,
                "observed": {"exit": code, "modified": modified[:20]},
            }
        ]

    async def _check_rollback_generation(self, params: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
        a = self.cfg.actions
        expected = before.get("expected_target")
        now_target = os.path.realpath(a.system_profile)
        current = os.path.realpath(a.current_system)
        checks = [
            {
                "check": "system profile points at the previous generation",
                "passed": expected is not None and now_target == expected,
                "observed": {"profile": now_target, "expected": expected},
            },
            {
                "check": f"{a.current_system} is the previous generation",
                "passed": expected is not None and current == expected,
                "observed": current,
            },
        ]
        if has_systemd():
            failed = await failed_units()
            new = sorted(set(failed) - set(before.get("failed_units") or []))
            checks.append({"check": "no unit failed that was not failed before", "passed": not new, "observed": new})
            checks += await self._recovered_after_switch()
        return checks

    async def _recovered_after_switch(self) -> list[dict[str, Any]]:
        """The units whose failure the incident attributed to the switch are active again.  Only those:
        the rollback is for them (a rollback without such an incident checks the profile links and
        new failures only, and says so)."""
        from ai_sysadmin.store.switches import attributed_units

        if self.conn is None or self.incident_id is None:
            return [
                {
                    "check": "units attributed to the switch are active again",
                    "passed": True,
                    "observed": "not checked (no incident attributed to a switch)",
                }
            ]
        units = await attributed_units(self.conn, self.incident_id)
        if not units:
            return [
                {
                    "check": "units attributed to the switch are active again",
                    "passed": True,
                    "observed": f"not checked (incident {self.incident_id} is not attributed to a switch)",
                }
            ]
        checks = []
        deadline = time.monotonic() + 120.0
        for unit in units:
            p = await unit_props(unit, "ActiveState", "SubState")
            # switch-to-configuration has started them; some take a while to come up.
            while p.get("ActiveState") in SETTLING and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                p = await unit_props(unit, "ActiveState", "SubState")
            checks.append(
                {
                    "check": f"{unit} (failed after the switch) is active again",
                    "passed": p.get("ActiveState") == "active",
                    "observed": f"{p.get('ActiveState')}/{p.get('SubState')}",
                }
            )
        return checks


Snapshot = Callable[[Verifier, dict[str, Any]], Awaitable[dict[str, Any]]]
Check = Callable[[Verifier, dict[str, Any], dict[str, Any]], Awaitable[list[dict[str, Any]]]]

# The snapshot each declared verification compares against (none: nothing to compare).
BEFORE: dict[Verification, Snapshot] = {
    Verification.UNIT_STAYS_ACTIVE: Verifier._before_restart,
    Verification.ARCHIVED_JOURNAL_BOUNDED: Verifier._before_vacuum,
    Verification.STORE_SPACE_KEPT: Verifier._before_collect,
    Verification.PREVIOUS_GENERATION_RUNNING: Verifier._before_rollback,
}

# The check of each declared verification, after the steps ran.
CHECKS: dict[Verification, Check] = {
    Verification.STEPS_ONLY: Verifier._steps_only,
    Verification.UNIT_STAYS_ACTIVE: Verifier._check_restart_unit,
    Verification.UNIT_NOT_FAILED: Verifier._check_reset_failed_unit,
    Verification.ARCHIVED_JOURNAL_BOUNDED: Verifier._check_vacuum_journal,
    Verification.STORE_SPACE_KEPT: Verifier._check_collect_garbage,
    Verification.STORE_VERIFIES: Verifier._check_nix_store_repair,
    Verification.PREVIOUS_GENERATION_RUNNING: Verifier._check_rollback_generation,
}
