"""The incident service: the correlator fed by the trigger sink, persisted in PostgreSQL.

* `TriggerTap` wraps the trigger sink L1 and the collector write to: after a batch is
  recorded (or spooled) its triggers are handed to the service (and to whoever else
  listens, e.g. the review's early-run check).  Handing over never blocks L1.
* `IncidentService.run()` correlates pending triggers, persists what changed, and every
  `TICK` self-resolves / closes incidents (unit state from the collector).
* On start it takes back the open / acknowledged / recently resolved incidents and
  correlates triggers recorded lately that no incident holds, so a restart (or a crash
  between recording and correlating) loses nothing.
* While PostgreSQL is down the changes wait in memory (bounded) and are written when
  it answers again.
* Each incident belongs to a host (`host_of`): on a hub the host each trigger names (its
  member's L1 pipeline sets it), elsewhere the store's local host (the one every row
  without a host belongs to: store_settings.local_host), whatever `_HOSTNAME` the journal
  carries, so a renamed standalone host keeps one incident per problem.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ai_sysadmin.config import Config, FleetConfig
from ai_sysadmin.incidents.correlate import Change, Correlator, Incident, UnitView, one_host, systemd_unit
from ai_sysadmin.incidents.hooks import OnResolved
from ai_sysadmin.store.incidents import IncidentStore
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.sink import TriggerSink

log = logging.getLogger(__name__)

TICK = 10.0  # seconds between lifecycle checks
MAX_PENDING = 20_000  # distinct triggers waiting to be correlated; beyond this the oldest deltas fold


class UnitSource(Protocol):
    async def view(self, host: str | None = None) -> UnitView:
        """Unit health of `host` (None or "": this host)."""
        ...


def host_of(fleet: FleetConfig) -> Callable[[Trigger], str]:
    """The host an incident of this trigger belongs to, by the fleet role."""
    if fleet.role == "hub":
        local = fleet.host_id()
        return lambda t: t.host or local
    return one_host


def trigger_from_row(row: dict[str, Any]) -> Trigger:
    return Trigger(
        id=row["id"],
        severity=row["severity"],
        category=row["category"],
        source=row["source"],
        unit=row["unit"],
        template=row["template"],
        template_id=row["template_id"],
        count=int(row["count"]),
        first_seen=row["first_seen"],
        last_seen=row["last_seen"],
        sample=list(row.get("sample") or []),
        summary=row.get("summary"),
        host=row.get("host"),
        boot_id=row.get("boot_id"),
        fields=dict(row.get("fields") or {}),
    )


class TriggerTap:
    """A trigger sink that records through `inner`, then tells the listeners."""

    def __init__(self, inner: TriggerSink, *listeners: Callable[[Sequence[Trigger]], None]):
        self._inner = inner
        self._listeners = list(listeners)

    def listen(self, fn: Callable[[Sequence[Trigger]], None]) -> None:
        self._listeners.append(fn)

    async def record_triggers(
        self, triggers: Sequence[Trigger], cursor: str | None, stream: str = "journal", *, checkpoint: int | None = None
    ) -> None:
        # L1's checkpoint number travels with the cursor (exact resume after kill -9).
        await self._inner.record_triggers(triggers, cursor, stream, checkpoint=checkpoint)
        for fn in self._listeners:
            try:
                fn(triggers)
            except Exception:  # a listener must never fail L1's checkpoint
                log.exception("trigger listener failed")

    async def load_cursor(self, stream: str = "journal") -> str | None:
        return await self._inner.load_cursor(stream)

    async def load_position(self, stream: str = "journal") -> tuple[str | None, int | None]:
        return await self._inner.load_position(stream)

    def __getattr__(self, name: str) -> Any:  # get(), ... of the wrapped store
        return getattr(self._inner, name)


def incident_row(inc: Incident, supported: Callable[[Incident], Sequence[str]] | None = None) -> dict[str, Any]:
    """The stored row; `supported` (review.candidates.supported_actions, passed in by the
    composition root: incidents do not import the review) fills `candidate_actions`."""
    unit = next(
        (
            systemd_unit(e.unit)
            for e in sorted(inc.evidence.values(), key=lambda e: e.first_seen)
            if systemd_unit(e.unit)
        ),
        None,
    )
    return {
        "id": inc.id,
        "host": inc.host or None,  # None: the store's local host
        "hosts": [(h, inc.hosts[h]) for h in inc.host_list if h in inc.hosts],
        "title": inc.title,
        "severity": inc.severity,
        "category": inc.category,
        "unit": unit,
        "candidate_actions": list(supported(inc)) if supported is not None else None,
        "units": sorted(inc.all_units),
        "confidence": inc.confidence,
        "first_trigger_at": inc.first_seen,
        "last_trigger_at": inc.last_seen,
        "reopened": inc.reopened,
        "status": inc.status,
        "resolved_at": inc.resolved_at,
        "resolved_reason": inc.resolved_reason,
    }


class IncidentService:
    def __init__(
        self,
        cfg: Config,
        store: IncidentStore,
        units: UnitSource,
        *,
        on_resolved: OnResolved | None = None,
        on_correlated: Callable[[list[Trigger], dict[str, int]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        supported: Callable[[Incident], Sequence[str]] | None = None,
    ):
        self.cfg = cfg
        self.supported = supported  # incident -> the action ids its evidence supports (incident_row)
        self.store = store
        self.units = units
        self.on_resolved = on_resolved
        self.on_correlated = on_correlated  # (triggers, trigger id -> incident id): the review's window
        self.clock = clock
        self.correlator = Correlator(cfg.review, host_of(cfg.fleet))
        self._pending: dict[str, Trigger] = {}
        self._unsaved: dict[int, tuple[Incident, bool]] = {}  # key -> (incident, status changed)
        self._linked: dict[int, set[str]] = {}  # key -> trigger ids not yet confirmed linked
        self._wake = asyncio.Event()
        self.folded = 0
        self.last_error: str | None = None
        self.last_units: UnitView | None = None

    # ------------------------------------------------------------------ input

    def submit(self, triggers: Sequence[Trigger]) -> None:
        """TriggerTap listener: queue only (never blocks the caller)."""
        for t in triggers:
            old = self._pending.get(t.id)
            if old is not None:
                fields = dict(old.fields)
                if fields.get("sender") != t.fields.get("sender"):
                    fields.pop("sender", None)  # mixed senders: the text is unproven (trigger/entry.py)
                t = Trigger(
                    **{
                        **old.__dict__,
                        "count": old.count + t.count,
                        "last_seen": max(old.last_seen, t.last_seen),
                        "severity": t.severity,
                        "sample": (old.sample + t.sample)[-5:],
                        "fields": fields,
                    }
                )
            elif len(self._pending) >= MAX_PENDING:
                self.folded += 1
                self._pending.pop(next(iter(self._pending)))
            self._pending[t.id] = t
        self._wake.set()

    # ------------------------------------------------------------------ loop

    async def start(self) -> None:
        """Take back live incidents and correlate recently recorded, unassigned triggers."""
        rows = await self.store.live(self.cfg.review.reopen_window)
        for row in rows:
            evid = [trigger_from_row(t) for t in reversed(row["trigger_rows"])]
            if not evid:
                continue
            inc = Incident(
                key=int(row["id"]),
                id=int(row["id"]),
                status="open",
                category=row["category"],
                severity=row["severity"],
                title=row["title"],
                first_seen=evid[0].first_seen,
                last_seen=evid[0].last_seen,
                **self._hosts_of(row),
            )
            for t in evid:
                self.correlator._attach(inc, self.correlator.evidence(t), t)
            inc.status = row["status"]
            inc.acknowledged = row["acknowledged_at"] is not None or row["status"] == "acknowledged"
            inc.resolved_at, inc.resolved_reason = row["resolved_at"], row["resolved_reason"]
            inc.reopened = int(row["reopened"] or 0)
            self.correlator.restore(inc)
        stray = await self.store.unassigned_triggers(max(self.cfg.review.incident_window, 3600.0))
        if rows or stray:
            log.info(
                "incidents: %d live incident(s) restored, %d unassigned trigger(s) to correlate",
                len(self.correlator.incidents),
                len(stray),
            )
        self.submit([trigger_from_row(r) for r in stray])

    def _hosts_of(self, row: dict[str, Any]) -> dict[str, Any]:
        """A stored incident's host and hosts as the correlator names them: on a hub the stored
        ones (also hosts whose triggers are beyond the evidence kept in memory); elsewhere
        there is one host, the store's local one, which the correlator calls ""."""
        if self.cfg.fleet.role != "hub":
            return {"host": ""}
        return {"host": row["host"], "hosts": dict(row.get("hosts") or {})}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_tick - loop.time()))
            self._wake.clear()
            try:
                await self.process()
                if loop.time() >= next_tick:
                    await self.tick()
                    next_tick = loop.time() + TICK
                self.last_error = None
            except Exception as exc:  # database down: changes stay in memory, retried next round
                if self.last_error is None:
                    log.warning("incidents: cannot persist (%s); keeping changes in memory", exc)
                self.last_error = str(exc) or exc.__class__.__name__
                next_tick = min(next_tick, loop.time() + TICK)
                await asyncio.sleep(1.0)

    async def process(self) -> list[Change]:
        """Correlate what is pending and persist every change."""
        batch, self._pending = list(self._pending.values()), {}
        changes = self.correlator.add(batch) if batch else []
        for ch in changes:
            self._mark(ch, ch.kind != "updated")
            self._linked.setdefault(ch.incident.key, set()).update(
                t.id for t in batch if self.correlator._by_trigger.get(t.id) == ch.incident.key
            )
        try:
            await self._flush()
        finally:
            if batch and self.on_correlated is not None:
                ids = {
                    t.id: inc.id
                    for t in batch
                    if (inc := self.correlator.incidents.get(self.correlator._by_trigger.get(t.id, -1))) is not None
                    and inc.id is not None
                }
                try:
                    self.on_correlated(batch, ids)
                except Exception:
                    log.exception("incidents: on_correlated listener failed")
        return changes

    async def tick(self) -> list[Change]:
        live = [i for i in self.correlator.incidents.values() if i.id is not None]
        if live:
            stored = await self.store.statuses([i.id for i in live if i.id is not None])
            for inc in live:
                status = stored.get(inc.id) if inc.id is not None else None
                if status and status != inc.status and (inc.key not in self._unsaved):
                    self.correlator.set_status(inc.key, status)  # a person acknowledged / resolved / closed it
        # Triggers spooled during an outage arrive in the database later than their incident.
        await self.store.link_missing([(tid, i.id) for i in live if i.id is not None for tid in i.evidence])
        self.last_units = await self.units.view()
        # Each incident resolves by the unit state of its own host(s): a member's by the
        # member's collector rows on the hub, never by the hub's (docs/fleet.md).
        views = {"": self.last_units}
        for h in sorted({h for i in self.correlator.incidents.values() for h in i.host_list} - {""}):
            views[h] = await self.units.view(h)
        changes = self.correlator.tick(self.clock(), views)
        for ch in changes:
            self._mark(ch, True)
        await self._flush()
        for ch in changes:
            if ch.kind == "resolved":
                await self._resolved(ch.incident)
        return changes

    def _mark(self, ch: Change, status_changed: bool) -> None:
        prev = self._unsaved.get(ch.incident.key)
        self._unsaved[ch.incident.key] = (ch.incident, status_changed or bool(prev and prev[1]))

    async def _flush(self) -> None:
        for key, (inc, status_changed) in list(self._unsaved.items()):
            ids = sorted(self._linked.get(key, set()))
            inc.id = await self.store.save_correlated(
                incident_row(inc, self.supported), ids, status_changed=status_changed or inc.id is None
            )
            del self._unsaved[key]
            self._linked.pop(key, None)

    async def _resolved(self, inc: Incident) -> None:
        if self.on_resolved is None:
            return
        try:
            await self.on_resolved(inc.to_json())
        except Exception:
            log.exception("incidents: on_resolved hook failed for incident %s", inc.id)

    # ------------------------------------------------------------------ views

    def active(self) -> list[Incident]:
        return self.correlator.active()

    def report(self) -> dict[str, Any]:
        return {
            "active": len(self.active()),
            "pending": len(self._pending),
            "unsaved": len(self._unsaved),
            "folded": self.folded,
            "error": self.last_error,
            "unit_state": None
            if self.last_units is None
            else ("available" if self.last_units.available else self.last_units.reason),
        }
