"""LiveHost: the investigation tools' facts read from this machine (meta.tools.facts.HostFacts).

systemctl, journalctl and nix run through the `Runner` (argv, no shell, bounded output);
disks and processes through psutil; metrics, triggers and incidents from the store.
The low-level readers stay with their tools (disk.measure, processes.top, ...); this
class is the one place that decides they read the live host.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import Config
from ai_sysadmin.meta.tools import disk, generations, journal, metrics, processes
from ai_sysadmin.meta.tools.base import ToolError
from ai_sysadmin.meta.tools.runner import Runner
from ai_sysadmin.store import member_reads


async def read_journal(runner: Runner, argv: list[str]) -> list[dict[str, Any]]:
    """journalctl's JSON entries (argv from journal.argv); ToolError when it fails with nothing read."""
    r = await runner.run(argv)
    if r.timed_out:
        raise ToolError("journalctl timed out; narrow with unit, since or priority")
    entries = []
    for raw in r.stdout.splitlines():
        try:
            entry = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    if r.returncode not in (0, None) and not entries:
        err = (r.stderr.strip().splitlines() or ["journalctl failed"])[-1]
        raise ToolError(f"journalctl: {err[:300]}")
    return entries


class LiveHost:
    name = "live"

    def __init__(self, cfg: Config, runner: Runner, pool: AsyncConnectionPool | None = None):
        self.cfg = cfg
        self.runner = runner
        self.pool = pool

    # ------------------------------------------------------------ systemd and the journal

    async def journal(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        return await read_journal(self.runner, journal.argv(self.cfg, args))

    async def unit_properties(self, unit: str, properties: Sequence[str]) -> dict[str, str]:
        r = await self.runner.run(["systemctl", "show", "--no-pager", f"--property={','.join(properties)}", "--", unit])
        if r.timed_out:
            raise ToolError("systemctl timed out")
        if r.returncode != 0:
            raise ToolError(f"systemctl show: {(r.stderr.strip() or 'failed')[:300]}")
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    async def unit_dependencies(self, unit: str, properties: Sequence[str]) -> dict[str, list[str]]:
        r = await self.runner.run(["systemctl", "show", "--no-pager", f"--property={','.join(properties)}", "--", unit])
        if r.timed_out or r.returncode != 0:
            raise ToolError(f"systemctl show: {(r.stderr.strip() or 'timed out')[:300]}")
        return {k: v.split() for k, v in (ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln) if v}

    async def failed_units(self) -> list[dict[str, Any]]:
        r = await self.runner.run(
            ["systemctl", "list-units", "--state=failed", "--all", "--no-legend", "--plain", "--no-pager"]
        )
        if r.timed_out or r.returncode != 0:
            raise ToolError(f"systemctl list-units: {(r.stderr.strip() or 'timed out')[:300]}")
        units = []
        for line in r.stdout.splitlines():
            parts = line.split(None, 4)
            if len(parts) >= 4:
                units.append(
                    {
                        "unit": parts[0],
                        "load": parts[1],
                        "active": parts[2],
                        "sub": parts[3],
                        "description": parts[4] if len(parts) > 4 else "",
                    }
                )
        return units

    # ------------------------------------------------------------ disks and processes

    async def mounts(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(disk.mounts)

    async def largest_dirs(self, path: str, limit: int) -> dict[str, Any]:
        real = disk.allowed(path, tuple(self.cfg.meta.disk_paths))
        m = await asyncio.to_thread(disk.measure, real, time.monotonic() + self.runner.timeout)
        sizes = sorted(((b, os.path.join(real, name)) for name, b in m.children.items()), reverse=True)
        return {
            "path": real,
            "total": m.total,
            "dirs": [{"path": n, "bytes": s} for s, n in sizes[:limit]],
            "unreadable": m.unreadable,
        }

    async def processes(self, sort_by: str, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(processes.top, sort_by, limit)

    # ------------------------------------------------------------ NixOS generations

    async def generations(self) -> dict[str, Any]:
        return await generations.live_generations(self.cfg, self.runner)

    async def generation_diff(self, first: int, second: int) -> str:
        return await generations.live_diff(self.cfg, self.runner, first, second)

    # ------------------------------------------------------------ the store

    def _pool(self, what: str) -> AsyncConnectionPool:
        if self.pool is None:
            raise ToolError(f"no database configured: {what} are unavailable")
        return self.pool

    async def metric_series(self, since_s: int) -> list[tuple[Any, ...]]:
        pool = self._pool("metrics")
        since = datetime.now(UTC) - timedelta(seconds=since_s)
        async with pool.connection() as conn:
            return await (
                await conn.execute(
                    "SELECT name, subject, count(*), min(value), max(value), (array_agg(value ORDER BY ts DESC))[1] "
                    "FROM metrics WHERE ts >= %s GROUP BY name, subject ORDER BY name, subject LIMIT 500",
                    (since,),
                )
            ).fetchall()

    async def metric_points(
        self, name: str, subject: str | None, since_s: int, step_s: int, aggregate: str
    ) -> list[tuple[Any, ...]]:
        pool = self._pool("metrics")
        now = datetime.now(UTC)
        agg = metrics.AGGREGATES[aggregate]
        q = (
            f"SELECT date_bin(%s::interval, ts, timestamptz '2000-01-01') AS bucket, subject, {agg}, count(*) "
            "FROM metrics WHERE name = %s AND ts >= %s AND ts <= %s"
        )
        params: list[Any] = [timedelta(seconds=step_s), name, now - timedelta(seconds=since_s), now]
        if subject is not None:
            q += " AND subject = %s"
            params.append(subject)
        q += " GROUP BY bucket, subject ORDER BY subject, bucket LIMIT 2000"
        async with pool.connection() as conn:
            return await (await conn.execute(q, params)).fetchall()

    async def trigger_templates(
        self, unit: str | None, severities: Sequence[str] | None, since_s: int, limit: int
    ) -> list[tuple[Any, ...]]:
        async with self._pool("triggers").connection() as conn:
            return await member_reads.trigger_templates(conn, None, unit, severities, since_s, limit)

    async def incidents(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        from ai_sysadmin.store.incidents import IncidentStore

        return await IncidentStore(self._pool("incidents")).list(status, limit)

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        from ai_sysadmin.store.incidents import IncidentStore

        return await IncidentStore(self._pool("incidents")).show(incident_id)
