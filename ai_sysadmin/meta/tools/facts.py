"""Where the investigation tools get their facts: the `HostFacts` protocol.

Each tool validates its arguments and renders text for the model; what it renders
comes from a `HostFacts`.  Three implementations satisfy it:

* `meta.tools.live.LiveHost` -- this machine: systemctl, journalctl, psutil, the Nix
  profile, and the store (metrics, triggers, incidents).  The service, `ask`, `chat`
  and the API use it.
* `meta.tools.member.MemberHost` -- a fleet member, read on the hub: its journal files
  in the hub's journal directory and its rows in the hub's database; what the hub does
  not hold is a ToolError (docs/fleet.md).  The hub's escalations of a member's incident.
* `eval.snapshot_host.SnapshotHost` -- a stand-in for the live host: answers from an
  eval scenario's host snapshot, its journal and the eval run's own incidents, and
  never reads the machine it runs on.

A method that cannot answer raises `ToolError` with a message for the model.  Shapes:

* journal entries: journald's JSON fields (`MESSAGE`, `PRIORITY`, `_SYSTEMD_UNIT`,
  `__REALTIME_TIMESTAMP` in microseconds, ...), oldest first;
* unit properties: `systemctl show` names to string values (`ActiveState`, `Result`, ...);
* failed units: {unit, load, active, sub, description};
* mounts: {mount, fstype, size, used, free (bytes; None when unknown), used_percent,
  inodes_used_percent};
* largest dirs: {total (bytes or None), dirs: [{path, bytes}] largest first, unreadable};
* processes: {pid, user, cpu_percent, rss (bytes), command, unit (optional)};
* generations: {generations: [{generation, date, current_profile, store_path, running,
  booted}], current_system, booted_system};
* metric series rows: (name, subject, samples, min, max, last); points: (bucket
  datetime, subject, value, samples);
* trigger template rows: (template_id, template, unit, severity, category, total,
  last_seen datetime, [trigger ids]);
* incidents: rows as `store.incidents.IncidentStore.list` and `.show` give them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class HostFacts(Protocol):
    name: str  # "live", "member:<host>", or "snapshot:<scenario>" (shown in `tools` output and eval results)

    async def journal(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Entries matching journal_query's (validated) arguments: unit, priority, since, until, grep,
        boot, lines (the newest N)."""
        ...

    async def unit_properties(self, unit: str, properties: Sequence[str]) -> dict[str, str]: ...

    async def unit_dependencies(self, unit: str, properties: Sequence[str]) -> dict[str, list[str]]: ...

    async def failed_units(self) -> list[dict[str, Any]]: ...

    async def mounts(self) -> list[dict[str, Any]]: ...

    async def largest_dirs(self, path: str, limit: int) -> dict[str, Any]: ...

    async def processes(self, sort_by: str, limit: int) -> list[dict[str, Any]]: ...

    async def generations(self) -> dict[str, Any]: ...

    async def generation_diff(self, first: int, second: int) -> str:
        """`nix store diff-closures` between two generations (text; empty: no differences)."""
        ...

    async def metric_series(self, since_s: int) -> list[tuple[Any, ...]]: ...

    async def metric_points(
        self, name: str, subject: str | None, since_s: int, step_s: int, aggregate: str
    ) -> list[tuple[Any, ...]]: ...

    async def trigger_templates(
        self, unit: str | None, severities: Sequence[str] | None, since_s: int, limit: int
    ) -> list[tuple[Any, ...]]: ...

    async def incidents(self, status: str | None, limit: int) -> list[dict[str, Any]]: ...

    async def incident(self, incident_id: int) -> dict[str, Any] | None: ...
