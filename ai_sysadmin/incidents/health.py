"""Unit health for self-resolution, as the metrics collector recorded it.

The collector writes `units.failed` (how many) and one `unit.failed` sample per failed
unit every `intervals.metrics`.  The newest `units.failed` sample says unit state was
readable at that moment; the `unit.failed` subjects at that timestamp are the failed
units.  No recent `units.failed` sample means unit state is unknown (no systemd here,
or the collector is behind), and an incident about units then stays open.

On a hub each host's unit state is its own: a member's collector writes its rows with its
host (docs/fleet.md), and an incident of that member resolves by them, never by the hub's.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.incidents.correlate import UnitView
from ai_sysadmin.store.metrics import failed_units


class CollectorUnits:
    def __init__(self, pool: AsyncConnectionPool, metrics_interval: float, *, local: str | None = None):
        """`local`: this host's fleet id, read as the store's local host (the rows its own collector writes)."""
        self._pool = pool
        self._max_age = max(3 * metrics_interval, 60.0)
        self._local = local

    async def view(self, host: str | None = None) -> UnitView:
        """`host`: whose units (None or "": this host's)."""
        asked = None if not host or host == self._local else host
        try:
            async with self._pool.connection() as conn:
                units = await failed_units(conn, self._max_age, asked)
                if units is None:
                    whose = f" of host {asked}" if asked else ""
                    return UnitView(
                        False, reason=f"no unit state{whose} from the collector in the last {self._max_age:g}s"
                    )
                return UnitView(True, units)
        except Exception as exc:  # database down: unknown, never "healthy"
            return UnitView(False, reason=f"unit state unreadable: {exc.__class__.__name__}")


class StaticUnits:
    """A fixed view (replay's metric snapshot, tests)."""

    def __init__(self, view: UnitView):
        self._view = view

    async def view(self, host: str | None = None) -> UnitView:
        return self._view
