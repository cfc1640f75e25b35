"""SnapshotHost: a stand-in for the live host, so `ai-sysadmin eval` can run the L4 investigation.

It satisfies meta.tools.facts.HostFacts from a scenario instead of this machine: the
scenario's `host` snapshot (units, disks, processes, memory, generations), its journal,
and what the eval run itself produced (L1's triggers, the incidents, the review's
findings and proposals).  It never runs a command, reads no file of this host and
opens no database: the investigation tools answer exactly what the scenario holds, and
say so when it holds nothing ("not in the host snapshot") rather than guessing.

Time is the scenario's: "now" is just after the journal's last entry, so `since=-1h`
means the hour before the incident, as it would on the host.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ai_sysadmin.eval.scenario import SNAPSHOT_AFTER_S, T0_USEC, Scenario
from ai_sysadmin.meta.tools.base import ToolError
from ai_sysadmin.meta.tools.journal import PRIORITIES
from ai_sysadmin.meta.tools.runner import Runner, RunOutput
from ai_sysadmin.review.candidates import supported_actions
from ai_sysadmin.trigger.model import SEVERITIES

MIB = 1024 * 1024
GIB = 1024 * MIB
_REL = re.compile(r"^-([0-9]{1,5})(s|m|min|h|d|w)$")
_REL_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


class NoCommands(Runner):
    """The eval toolset's runner: it runs nothing on this host, and counts what it was asked."""

    def __init__(self) -> None:
        super().__init__(timeout=1.0)
        self.refused: list[list[str]] = []

    async def run(self, argv: list[str], timeout: float | None = None) -> RunOutput:
        self.refused.append(list(argv))
        raise ToolError("the eval stand-in for the host runs no command")


class SnapshotHost:
    """HostFacts from one scenario and its eval run (nothing of the live host is read)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        disk_paths: Sequence[str] = (),
        triggers: Sequence[Any] = (),
        incidents: Sequence[Any] = (),
        findings: Sequence[dict[str, Any]] = (),
        proposals: Sequence[dict[str, Any]] = (),
    ):
        self.sc = scenario
        self.name = f"snapshot:{scenario.name}"
        self.host = scenario.host
        self.roots = tuple(disk_paths)
        self.triggers = list(triggers)  # trigger.model.Trigger: L1's and the thresholds'
        self.incident_list = list(incidents)  # incidents.correlate.Incident, numbered from 1
        self.findings = list(findings)  # the review's findings (dicts with `incident`)
        self.proposals = list(proposals)  # the review's proposals (dicts with `incident`)
        self.entries = [json.loads(line) for line in scenario.export_lines()]
        last = max((int(e["__REALTIME_TIMESTAMP"]) for e in self.entries), default=T0_USEC)
        self.now_usec = max(last, T0_USEC + int(SNAPSHOT_AFTER_S * 1e6)) + 1_000_000
        self.calls: list[str] = []  # the methods asked, in order (tests: what answered)

    @property
    def now(self) -> datetime:
        return datetime.fromtimestamp(self.now_usec / 1e6, UTC)

    def _asked(self, what: str) -> None:
        self.calls.append(what)

    # ------------------------------------------------------------ the journal

    async def journal(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        self._asked("journal")
        boot = args.get("boot")
        if boot is not None and boot != "0" and not any(e.get("_BOOT_ID") == boot for e in self.entries):
            raise ToolError(f"invalid argument boot: the host snapshot holds one boot; {boot} is not in it")
        since = self._time(args["since"], "since") if "since" in args else None
        until = self._time(args["until"], "until") if "until" in args else None
        grep = None
        if "grep" in args:
            pattern = args["grep"]
            try:  # journalctl's --grep is case-insensitive when the pattern has no capital letter
                grep = re.compile(pattern, 0 if pattern != pattern.lower() else re.IGNORECASE)
            except re.error as exc:
                raise ToolError(f"invalid argument grep: not a regular expression ({exc})") from None
        level = PRIORITIES.index(args["priority"]) if "priority" in args else None
        out = []
        for e in self.entries:
            ts = int(e["__REALTIME_TIMESTAMP"])
            if (since is not None and ts < since) or (until is not None and ts > until):
                continue
            if "unit" in args and not _about_unit(e, args["unit"]):
                continue
            if level is not None and _priority(e) > level:
                continue
            if grep is not None and not grep.search(str(e.get("MESSAGE", ""))):
                continue
            out.append(e)
        return out[-args.get("lines", 50) :]

    def _time(self, spec: str, field_name: str) -> int:
        """A journalctl time spec as microseconds, in the scenario's time."""
        m = _REL.match(spec)
        if m:
            return self.now_usec - int(m.group(1)) * _REL_UNITS[m.group(2)] * 1_000_000
        day = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        if spec in ("now", "today", "yesterday"):
            at = {"now": self.now, "today": day, "yesterday": day - timedelta(days=1)}[spec]
            return int(at.timestamp() * 1e6)
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
            try:
                return int(datetime.strptime(spec, fmt).replace(tzinfo=UTC).timestamp() * 1e6)
            except ValueError:
                continue
        raise ToolError(f"invalid argument {field_name}: not a time")

    # ------------------------------------------------------------ systemd

    def _units(self) -> dict[str, Any]:
        units = self.host.get("units")
        if units is None:
            raise ToolError("the host snapshot has no unit states")
        return units

    async def failed_units(self) -> list[dict[str, Any]]:
        self._asked("failed_units")
        units = self._units()
        status = units.get("status", {})
        return [
            {
                "unit": u,
                "load": "loaded",
                "active": "failed",
                "sub": "failed",
                "description": status.get(u, {}).get("Description", ""),
            }
            for u in units.get("failed", [])
        ]

    async def unit_properties(self, unit: str, properties: Sequence[str]) -> dict[str, str]:
        self._asked("unit_properties")
        units = self._units()
        props: dict[str, str] = {}
        if unit in units.get("failed", []):
            props = {"Id": unit, "LoadState": "loaded", "ActiveState": "failed", "SubState": "failed"}
            result = self._unit_result(unit)
            if result:
                props["Result"] = result
        else:
            proc = next((p for p in self.host.get("processes", []) if p.get("unit") == unit), None)
            if proc is not None:
                props = {
                    "Id": unit,
                    "LoadState": "loaded",
                    "ActiveState": "active",
                    "SubState": "running",
                    "MainPID": str(proc["pid"]),
                    "Result": "success",
                }
        props.update({k: str(v) for k, v in units.get("status", {}).get(unit, {}).items()})
        if not props:
            raise ToolError(f"{unit}: not in the host snapshot (its state was not recorded)")
        return {k: v for k, v in props.items() if k in properties}

    def _unit_result(self, unit: str) -> str | None:
        """The last result PID 1 logged for the unit (journald's UNIT_RESULT field)."""
        results = [
            e["UNIT_RESULT"]
            for e in self.entries
            if e.get("UNIT") == unit and str(e.get("_PID")) == "1" and e.get("UNIT_RESULT")
        ]
        return results[-1] if results else None

    async def unit_dependencies(self, unit: str, properties: Sequence[str]) -> dict[str, list[str]]:
        self._asked("unit_dependencies")
        deps = self._units().get("dependencies", {}).get(unit)
        if deps is None:
            raise ToolError(f"{unit}: the host snapshot has no dependencies recorded for it")
        return {k: list(v) for k, v in deps.items() if k in properties and v}

    # ------------------------------------------------------------ disks and processes

    async def mounts(self) -> list[dict[str, Any]]:
        self._asked("mounts")
        out = []
        for d in self.host.get("disks", []):
            size = int(d["size_gb"] * GIB) if "size_gb" in d else None
            used = int(size * d["used_percent"] / 100) if size is not None else None
            out.append(
                {
                    "mount": d["mount"],
                    "fstype": d.get("fstype"),
                    "size": size,
                    "used": used,
                    "free": size - used if size is not None and used is not None else None,
                    "used_percent": d["used_percent"],
                    "inodes_used_percent": d.get("inodes_used_percent", "?"),
                }
            )
        return out

    async def largest_dirs(self, path: str, limit: int) -> dict[str, Any]:
        self._asked("largest_dirs")
        if ".." in path.split("/"):
            raise ToolError("invalid argument path: must not contain '..'")
        path = os.path.normpath(path)  # lexical only: this host's file system is not looked at
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in self.roots):
            raise ToolError(f"invalid argument path: {path!r} is not under an allowed root ({', '.join(self.roots)})")
        sizes = {e["path"]: int(e["size_mb"] * MIB) for d in self.host.get("disks", []) for e in d.get("largest", [])}
        inside = sorted(((b, p) for p, b in sizes.items() if p.startswith(path.rstrip("/") + "/")), reverse=True)
        if path not in sizes and not inside:
            raise ToolError(f"the host snapshot has no directory sizes under {path}")
        return {
            "path": path,
            "total": sizes.get(path),
            "dirs": [{"path": p, "bytes": b} for b, p in inside[:limit]],
            "unreadable": 0,
        }

    async def processes(self, sort_by: str, limit: int) -> list[dict[str, Any]]:
        self._asked("processes")
        rows = [
            {
                "pid": p["pid"],
                "user": p.get("user", "?"),
                "cpu_percent": p.get("cpu_percent", 0.0),
                "rss": int(p.get("rss_mb", 0) * MIB),
                "command": p.get("command") or p.get("comm") or "?",
                "unit": p.get("unit"),
            }
            for p in self.host.get("processes", [])
        ]
        rows.sort(key=lambda r: r["cpu_percent"] if sort_by == "cpu" else r["rss"], reverse=True)
        return rows[:limit]

    # ------------------------------------------------------------ NixOS generations

    def _gens(self) -> list[dict[str, Any]]:
        gens = sorted(self.host.get("generations", []), key=lambda g: g["number"])
        if not gens:
            raise ToolError("the host snapshot has no NixOS generations")
        return gens

    async def generations(self) -> dict[str, Any]:
        self._asked("generations")
        gens = self._gens()
        current = max((g["number"] for g in gens if g.get("current")), default=None)
        rows = [
            {
                "generation": g["number"],
                "date": g.get("date", "?"),
                "current_profile": g["number"] == current,
                "store_path": g.get("store_path"),
                "running": bool(g.get("running", g["number"] == current)),
                "booted": bool(g.get("booted", False)),
            }
            for g in gens
        ]
        running = next((r for r in rows if r["running"]), None)
        booted = next((r for r in rows if r["booted"]), None)
        return {
            "generations": rows,
            "current_system": (running["store_path"] or f"generation {running['generation']}") if running else None,
            "booted_system": (booted["store_path"] or f"generation {booted['generation']}") if booted else None,
        }

    async def generation_diff(self, first: int, second: int) -> str:
        self._asked("generation_diff")
        gens = self._gens()
        numbers = [g["number"] for g in gens]
        for field_name, n in (("from", first), ("to", second)):
            if n not in numbers:
                raise ToolError(f"invalid argument {field_name}: generation {n} does not exist")
        # A generation's closure_diff is against the generation listed before it.
        i, j = numbers.index(first), numbers.index(second)
        if j == i + 1 and "closure_diff" in gens[j]:
            return str(gens[j]["closure_diff"])
        pairs = [f"{numbers[k - 1]} -> {numbers[k]}" for k in range(1, len(gens)) if "closure_diff" in gens[k]]
        raise ToolError(
            f"the host snapshot has no closure diff from {first} to {second}"
            + (f"; it has: {', '.join(pairs)}" if pairs else "")
        )

    # ------------------------------------------------------------ metrics, triggers, incidents

    def _samples(self, since_s: int) -> list[Any]:
        samples, _units = self.sc.snapshot()
        floor = self.now_usec / 1e6 - since_s
        return [s for s in samples if s.ts >= floor]

    async def metric_series(self, since_s: int) -> list[tuple[Any, ...]]:
        self._asked("metric_series")
        rows: dict[tuple[str, str], list[float]] = {}
        for s in self._samples(since_s):
            rows.setdefault((s.name, s.subject), []).append(s.value)
        return [(n, subj, len(v), min(v), max(v), v[-1]) for (n, subj), v in sorted(rows.items())]

    async def metric_points(
        self, name: str, subject: str | None, since_s: int, step_s: int, aggregate: str
    ) -> list[tuple[Any, ...]]:
        self._asked("metric_points")
        buckets: dict[tuple[str, float], list[float]] = {}
        for s in self._samples(since_s):
            if s.name == name and (subject is None or s.subject == subject):
                buckets.setdefault((s.subject, s.ts - s.ts % step_s), []).append(s.value)
        aggs: dict[str, Callable[[list[float]], float]] = {
            "avg": lambda v: sum(v) / len(v),
            "min": min,
            "max": max,
            "last": lambda v: v[-1],
        }
        agg = aggs[aggregate]
        return [(datetime.fromtimestamp(b, UTC), subj, agg(v), len(v)) for (subj, b), v in sorted(buckets.items())]

    async def trigger_templates(
        self, unit: str | None, severities: Sequence[str] | None, since_s: int, limit: int
    ) -> list[tuple[Any, ...]]:
        self._asked("trigger_templates")
        floor = self.now - timedelta(seconds=since_s)
        groups: dict[tuple[str, str | None], list[Any]] = {}
        for t in self.triggers:
            if t.last_seen < floor or (unit is not None and t.unit != unit):
                continue
            if severities is not None and t.severity not in severities:
                continue
            groups.setdefault((t.template_id, t.unit), []).append(t)
        rows = []
        for (tid, u), ts in groups.items():
            ts.sort(key=lambda t: t.last_seen, reverse=True)
            rows.append(
                (
                    tid,
                    ts[0].template,
                    u,
                    min((t.severity for t in ts), key=SEVERITIES.index),
                    ts[0].category,
                    sum(t.count for t in ts),
                    ts[0].last_seen,
                    [t.id for t in ts[:3]],
                )
            )
        rows.sort(key=lambda r: r[6], reverse=True)
        return rows[:limit]

    async def incidents(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        self._asked("incidents")
        rows = [self._incident_row(i) for i in self.incident_list if status is None or i.status == status]
        rows.sort(key=lambda r: (r["updated_at"], r["id"]), reverse=True)
        return rows[:limit]

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        self._asked("incident")
        inc = next((i for i in self.incident_list if i.id == incident_id), None)
        if inc is None:
            return None
        row = self._incident_row(inc)
        row.update(summary=None, diagnosis=None, resolution=None, outcome=None)
        # As the incident service stores it (incidents.candidate_actions): what its evidence supports.
        row["candidate_actions"] = supported_actions(inc)
        row["triggers"] = [
            {
                "id": e.id,
                "severity": e.severity,
                "category": e.category,
                "source": e.source,
                "unit": e.unit,
                "template": e.summary,
                "count": e.count,
                "first_seen": e.first_seen,
                "last_seen": e.last_seen,
            }
            for e in (inc.evidence[i] for i in inc.trigger_ids)
        ]
        row["findings"] = [
            {"id": f"r{n}", "layer": "review", "title": f.get("summary", "")}
            for n, f in enumerate(self.findings, 1)
            if f.get("incident") == incident_id
        ]
        row["actions"] = [
            {"id": n, "action": p.get("action"), "status": p.get("decision")}
            for n, p in enumerate(self.proposals, 1)
            if p.get("incident") == incident_id
        ]
        return row

    @staticmethod
    def _incident_row(inc: Any) -> dict[str, Any]:
        units = sorted(inc.all_units)
        return {
            "id": inc.id,
            "title": inc.title,
            "status": inc.status,
            "severity": inc.severity,
            "category": inc.category,
            "unit": units[0] if units else None,
            "opened_at": inc.first_seen,
            "updated_at": inc.last_seen,
            "triggers": len(inc.evidence),
        }


def _about_unit(e: dict[str, Any], unit: str) -> bool:
    """journalctl --unit: the unit's own processes, PID 1 about it, its core dumps."""
    return (
        e.get("_SYSTEMD_UNIT") == unit
        or e.get("COREDUMP_UNIT") == unit
        or e.get("OBJECT_SYSTEMD_UNIT") == unit
        or (e.get("UNIT") == unit and str(e.get("_PID")) == "1")
    )


def _priority(e: dict[str, Any]) -> int:
    try:
        return int(e.get("PRIORITY", 6))
    except (TypeError, ValueError):
        return 6
