"""MemberHost: the investigation tools' facts about a fleet member, read on the hub
(meta.tools.facts.HostFacts; docs/fleet.md).

A hub has no shell on its members.  What it holds of one is what this reads: the
member's journal files in the hub's journal directory (`journalctl --file=...`, the same
validated argv as the live host's), its metrics and unit states (the member collector's
rows in the hub's PostgreSQL, `host` = the member), its triggers and incidents.  What the
hub does not hold -- processes, directory sizes, NixOS generations, unit properties
beyond failed or not, unit dependencies -- is a tool error that says so: never the hub's
own values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import Config
from ai_sysadmin.meta.tools import journal
from ai_sysadmin.meta.tools.base import ToolError
from ai_sysadmin.meta.tools.live import read_journal
from ai_sysadmin.meta.tools.runner import Runner
from ai_sysadmin.store import member_reads
from ai_sysadmin.store.incidents import IncidentStore
from ai_sysadmin.store.metrics import failed_units_at

DISK_METRICS = ("disk.used_percent", "disk.inodes_used_percent")


class MemberHost:
    def __init__(
        self,
        cfg: Config,
        runner: Runner,
        pool: AsyncConnectionPool | None,
        host: str,
        journal_files: Callable[[], Sequence[str]],
    ):
        """`journal_files`: the member's journal files in the hub's directory now (live and
        rotated: read at each call, so a rotation is followed)."""
        self.cfg = cfg
        self.runner = runner
        self.pool = pool
        self.host = host
        self.journal_files = journal_files
        self.name = f"member:{host}"
        # Unit state and disks as fresh as the live host's tools would be: a few collector rounds.
        self.max_age = max(3 * cfg.intervals.metrics, 60.0)

    def _not_held(self, what: str) -> ToolError:
        return ToolError(
            f"{what}: not held on the hub for member {self.host} (the hub has its journal, metrics, "
            "unit failures, triggers and incidents; no shell on the member)"
        )

    def _pool(self, what: str) -> AsyncConnectionPool:
        if self.pool is None:
            raise ToolError(f"no database configured: member {self.host}'s {what} are unavailable")
        return self.pool

    # ------------------------------------------------------------ the journal

    async def journal(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        files = sorted(self.journal_files())
        if not files:
            raise ToolError(f"no journal file of member {self.host} in the hub's journal directory (yet)")
        return await read_journal(self.runner, journal.argv(self.cfg, args, [f"--file={f}" for f in files]))

    # ------------------------------------------------------------ units: failed or not, from its collector

    async def _failed(self) -> tuple[Any, frozenset[str]]:
        async with self._pool("unit states").connection() as conn:
            newest = await failed_units_at(conn, self.max_age, self.host)
        if newest is None:
            raise ToolError(
                f"no unit state of member {self.host} on the hub in the last {self.max_age:g}s "
                "(its collector writes none, or the hub's database is not reached)"
            )
        return newest

    async def failed_units(self) -> list[dict[str, Any]]:
        at, failed = await self._failed()
        note = f"as member {self.host}'s collector saw it at {at:%Y-%m-%d %H:%M:%S}"
        return [
            {"unit": u, "load": "loaded", "active": "failed", "sub": "failed", "description": note}
            for u in sorted(failed)
        ]

    async def unit_properties(self, unit: str, properties: Sequence[str]) -> dict[str, str]:
        at, failed = await self._failed()
        # The collector records failed units only: a unit not among them may be active,
        # inactive or not installed, which the hub cannot tell.
        state = "failed" if unit in failed else "unknown (not failed)"
        return {
            "Id": unit,
            "Description": f"member {self.host}: only failed-or-not is held on the hub (collector at {at:%H:%M:%S})",
            "ActiveState": state,
            "SubState": "failed" if unit in failed else "unknown",
        }

    async def unit_dependencies(self, unit: str, properties: Sequence[str]) -> dict[str, list[str]]:
        raise self._not_held("unit dependencies")

    # ------------------------------------------------------------ disks and processes

    async def mounts(self) -> list[dict[str, Any]]:
        async with self._pool("disks").connection() as conn:
            newest = await member_reads.newest_by_subject(conn, self.host, DISK_METRICS, self.max_age)
        used = newest.get("disk.used_percent", {})
        if not used:
            raise self._not_held("disk usage (no recent disk.used_percent)")
        inodes = newest.get("disk.inodes_used_percent", {})
        return [
            {
                "mount": mount,
                "fstype": None,
                "size": None,
                "used": None,
                "free": None,
                "used_percent": round(pct, 1),
                **({"inodes_used_percent": round(inodes[mount], 1)} if mount in inodes else {}),
            }
            for mount, pct in sorted(used.items())
        ]

    async def largest_dirs(self, path: str, limit: int) -> dict[str, Any]:
        raise self._not_held("directory sizes")

    async def processes(self, sort_by: str, limit: int) -> list[dict[str, Any]]:
        raise self._not_held("processes (metrics_query has proc.cpu_percent and proc.mem_percent per command)")

    async def generations(self) -> dict[str, Any]:
        raise self._not_held("NixOS generations")

    async def generation_diff(self, first: int, second: int) -> str:
        raise self._not_held("NixOS generations")

    # ------------------------------------------------------------ the hub's store, this host's rows

    async def metric_series(self, since_s: int) -> list[tuple[Any, ...]]:
        async with self._pool("metrics").connection() as conn:
            return await member_reads.metric_series(conn, self.host, since_s)

    async def metric_points(
        self, name: str, subject: str | None, since_s: int, step_s: int, aggregate: str
    ) -> list[tuple[Any, ...]]:
        async with self._pool("metrics").connection() as conn:
            return await member_reads.metric_points(conn, self.host, name, subject, since_s, step_s, aggregate)

    async def trigger_templates(
        self, unit: str | None, severities: Sequence[str] | None, since_s: int, limit: int
    ) -> list[tuple[Any, ...]]:
        async with self._pool("triggers").connection() as conn:
            return await member_reads.trigger_templates(conn, self.host, unit, severities, since_s, limit)

    async def incidents(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        return await IncidentStore(self._pool("incidents")).list(status, limit, host=self.host)

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        inc = await IncidentStore(self._pool("incidents")).show(incident_id)
        # Another host's incident is not this member's to read.
        if inc is None or self.host not in {h["host"] for h in inc.get("hosts") or ()}:
            return None
        return inc
