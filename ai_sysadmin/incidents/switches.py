"""The watch after a switch: notice each NixOS switch, record it with its preflight, and
attribute new failures of the units it touched to it (docs/preflight.md).

Every `review.switch_poll` seconds the service reads `actions.current_system`.  When it
points elsewhere than the last recorded switch went to (or, on the first start, than it
did at start), the switch is recorded: generations N -> M from the system profile, both
store paths, the link's own time, and the preflight report (closure diff, unit plan,
verdict) computed in-process on the old and the new system.  Each round then attributes
incidents (store/switches.py: the rule) whose first failure came within
`review.switch_window` after a switch and names a unit the switch touched; the review
proposes `rollback_generation` for those (review/reviewer.py), with the proof.

What it cannot see: a switch and a switch back between two polls, and the old system of
a switch made while the service was down for the first time (then the first switch it
records is the next one).  The old system's store path must still exist to be judged;
when it was collected the switch is recorded with the error instead of a report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.preflight.watch import Running, judge, running, touched
from ai_sysadmin.store.switches import SwitchRow, SwitchStore

log = logging.getLogger(__name__)

# The link's time and the journal's timestamps are read apart (and a unit can fail while the
# activation script is still re-pointing the link): a failure this little before the switch counts.
GRACE_S = 5.0


class SwitchWatch:
    def __init__(self, cfg: Config, store: SwitchStore, *, is_protected: Callable[[str], bool], nix: str = "nix"):
        self.cfg = cfg
        self.store = store
        self.is_protected = is_protected
        self.nix = nix
        self.last_path: str | None = None
        self.last_at: datetime | None = None  # when the last recorded switch happened
        self.started = False
        self.switches = 0
        self.attributed = 0
        self.last_error: str | None = None

    async def start(self) -> None:
        last = await self.store.last()
        if last is not None:
            self.last_path, self.last_at = last
        else:
            now = running(self.cfg.actions.current_system, self.cfg.actions.system_profile)
            self.last_path = now.path if now else None  # the first start: what runs is the baseline
        self.started = True
        log.info(
            "switch watch: %s is %s; new failures of the units a switch touches are attributed to it for %.0fs",
            self.cfg.actions.current_system,
            self.last_path or "absent",
            self.cfg.review.switch_window,
        )

    async def poll(self) -> list[dict[str, Any]]:
        """One round: record a switch if there was one, then attribute; returns the new attributions."""
        if not self.started:
            await self.start()
        now = running(self.cfg.actions.current_system, self.cfg.actions.system_profile)
        if now is not None and now.path != self.last_path:
            await self._record(self.last_path, now)
        window = self.cfg.review.switch_window
        # Twice the window: an incident written late (L1 catching up, a database outage) still counts.
        if self.last_at is None or (datetime.now(UTC) - self.last_at).total_seconds() > 2 * window:
            return []  # no switch in its window: nothing to attribute (and no query every poll)
        new = await self.store.attribute(window, GRACE_S)
        for a in new:
            log.warning(
                "incident %s attributed to switch %s: %s failed after it (attributed %.1fs after the failure)",
                a["incident_id"],
                a["switch_id"],
                ", ".join(a["units"]),
                (a["attributed_at"] - a["failed_at"]).total_seconds(),
            )
        self.attributed += len(new)
        return new

    async def _record(self, old: str | None, now: Running) -> None:
        a = self.cfg.actions
        if old is None:
            report: dict[str, Any] = {
                "verdict": None,
                "error": "no previous system known",
                "units": [],
                "closure": None,
                "reasons": [],
            }
        else:
            # nix store diff-closures and the unit files: a few hundred ms, off the event loop.
            report = await asyncio.to_thread(judge, old, now.path, self.is_protected, self.nix)
        from_gen = None
        if old is not None:
            from ai_sysadmin.actions.verification import _generation

            _, gens = _generation(a.system_profile)
            from_gen = max((n for n, t in gens.items() if t == old), default=None)
        row = SwitchRow(
            switched_at=now.since,
            from_generation=from_gen,
            to_generation=now.generation,
            from_path=old,
            to_path=now.path,
            verdict=report.get("verdict"),
            preflight=report,
            touched=touched(report),
        )
        sid = await self.store.record(row)
        self.last_path, self.last_at = now.path, now.since
        self.switches += 1
        log.warning(
            "switch %s noticed: generation %s -> %s (%s), preflight %s; watching %d unit(s) for %.0fs",
            sid,
            from_gen,
            now.generation,
            now.path,
            row.verdict or report.get("error"),
            len(row.touched),
            self.cfg.review.switch_window,
        )

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
                self.last_error = None
            except Exception as exc:  # database down: the link is read again next round
                if self.last_error is None:
                    log.warning("switch watch: %s", exc)
                self.last_error = str(exc) or exc.__class__.__name__
            await asyncio.sleep(self.cfg.review.switch_poll)

    def report(self) -> dict[str, Any]:
        return {
            "switches": self.switches,
            "attributed": self.attributed,
            "error": self.last_error,
            "at": datetime.now(UTC).isoformat(),
        }
