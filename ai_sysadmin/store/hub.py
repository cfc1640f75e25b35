"""A fleet member's writes to the hub's PostgreSQL: its metrics and unit states, as its own role.

The member's role (store/fleet.py) holds no privilege on `metrics`: it writes through
migration 12's function `ai_sysadmin_member_metrics`, one call per reading with one
array per column, and the function sets `host` from the login role -- there is none to
pass. So that a member configured with another member's credentials does not file its
readings under that member's name, each new connection first checks that it is logged in
as the role of its own host (HubRoleMismatch, raised, never dropped). The hub is another
machine: when it cannot be reached the member keeps nothing (its journal, which
journal-upload resends from its cursor, is the record); samples are dropped with one
warning per outage, the next connection is tried after a backoff that doubles up to
`MAX_BACKOFF`, and the first write that works again says how much was dropped. Memory
does not grow with the outage: nothing is queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import psycopg

from ai_sysadmin.store.fleet import member_role_name
from ai_sysadmin.store.metrics import Sample

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0  # seconds between tries at most, however long the hub is away


class HubRoleMismatch(Exception):
    """The hub connection is logged in as another role than this member host's own."""


async def insert_metrics(conn: psycopg.AsyncConnection, samples: Sequence[Sample]) -> None:
    """`samples` as rows of the connection's member host: one call of the hub's function
    (at most MEMBER_METRICS_MAX_ROWS rows; more is the function's error)."""
    if not samples:
        return
    await conn.execute(
        "SELECT ai_sysadmin_member_metrics(%s::timestamptz[], %s::text[], %s::text[], %s::double precision[])",
        (
            [datetime.fromtimestamp(s.ts, UTC) for s in samples],
            [s.name for s in samples],
            [s.subject for s in samples],
            [float(s.value) for s in samples],  # one element type: psycopg dumps no mixed int/float list
        ),
    )


async def check_member_role(conn: psycopg.AsyncConnection, host: str) -> None:
    """Raise HubRoleMismatch unless `conn` is logged in as member `host`'s role (the host
    the function will write under)."""
    expected = member_role_name(host)
    role = (await (await conn.execute("SELECT session_user::text")).fetchone())[0]  # type: ignore[index]
    if role != expected:
        raise HubRoleMismatch(
            f"the hub connection of host {host!r} is logged in as {role!r}, not as {expected!r}: "
            "its metrics would be written under another name (check fleet.hub_dsn's user)"
        )


class HubMetrics:
    """The member's metric sink on the hub: writes while the hub answers, drops while it does not."""

    def __init__(
        self,
        host: str,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection]],
        *,
        first_backoff: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.host = host
        self._connect = connect
        self._first_backoff = first_backoff
        self._clock = clock
        self._conn: psycopg.AsyncConnection | None = None
        self._backoff = 0.0
        self._next_try = 0.0
        self.dropped = 0  # batches dropped in the current outage (0 when the hub answers)
        self.outages = 0  # outages seen (one warning each)

    async def write(self, samples: Sequence[Sample]) -> str:
        """'stored' or 'dropped' (hub unreachable); never raises for an outage."""
        if self._conn is None and self._clock() < self._next_try:
            self.dropped += 1  # waiting out the backoff: not even a connection attempt
            return "dropped"
        try:
            if self._conn is None:
                self._conn = await self._open()
            await insert_metrics(self._conn, samples)
        except psycopg.OperationalError as exc:
            await self._lost(exc)
            return "dropped"
        if self.dropped or self._backoff:
            log.warning(
                "hub database reachable again: metrics of host %s written again (%d readings dropped meanwhile)",
                self.host,
                self.dropped,
            )
        self.dropped = 0
        self._backoff = 0.0
        return "stored"

    async def _open(self) -> psycopg.AsyncConnection:
        conn = await self._connect()
        try:
            await check_member_role(conn, self.host)
        except BaseException:
            await conn.close()  # a mismatch, or the hub gone meanwhile: keep nothing open
            raise
        return conn

    async def _lost(self, exc: Exception) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
        if not self._backoff:
            self.outages += 1
            log.warning(
                "hub database unreachable (%s): dropping host %s's metrics until it is back (the journal "
                "upload keeps its own cursor); retrying with backoff up to %.0fs",
                (str(exc).strip().splitlines() or [type(exc).__name__])[-1],
                self.host,
                MAX_BACKOFF,
            )
        self.dropped += 1
        self._backoff = min(MAX_BACKOFF, self._backoff * 2 if self._backoff else self._first_backoff)
        self._next_try = self._clock() + self._backoff

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
