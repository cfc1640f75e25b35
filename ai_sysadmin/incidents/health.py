"""Unit health for self-resolution, as the metrics collector recorded it.

The collector writes `units.failed` (how many) and one `unit.failed` sample per failed
unit every `intervals.metrics`.  The newest `units.failed` sample says unit state was
readable at that moment; the `unit.failed` subjects at that timestamp are the failed
units.  No recent `units.failed` sample means unit state is unknown (no systemd here,
or the collector is behind), and an incident about units then stays open.
"""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.incidents.correlate import UnitView


class CollectorUnits:
    def __init__(self, pool: AsyncConnectionPool, metrics_interval: float):
        self._pool = pool
        self._max_age = max(3 * metrics_interval, 60.0)

    async def view(self) -> UnitView:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT ts FROM metrics WHERE name = 'units.failed' AND ts > now() - make_interval(secs => %s) "
                    "ORDER BY ts DESC LIMIT 1", (self._max_age,))
                row = await cur.fetchone()
                if row is None:
                    return UnitView(False, reason=f"no unit state from the collector in the last {self._max_age:g}s")
                cur = await conn.execute("SELECT subject FROM metrics WHERE name = 'unit.failed' AND ts = %s",
                                         (row[0],))
                return UnitView(True, frozenset(r[0] for r in await cur.fetchall()))
        except Exception as exc:  # database down: unknown, never "healthy"
            return UnitView(False, reason=f"unit state unreadable: {exc.__class__.__name__}")


class StaticUnits:
    """A fixed view (replay's metric snapshot, tests)."""

    def __init__(self, view: UnitView):
        self._view = view

    async def view(self) -> UnitView:
        return self._view
