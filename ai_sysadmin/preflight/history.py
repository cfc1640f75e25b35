"""Risk flags from the incident history in PostgreSQL (when a database is configured).

* a unit the switch changes has an **open incident** (warn; the incident ids);
* a unit the switch changes **failed after an earlier switch** (an incident attributed
  to it in `switch_incidents`, incidents/switches.py) (warn);
* a package version the switch brings in is one an **earlier switch brought in before
  incidents were attributed to it** (warn).

psycopg is imported only here, and only when a database is configured: the pre-switch
check (`ai-sysadmin-preflight`) stays lean without one.  The connection has a short
timeout (`CONNECT_TIMEOUT_S`) and each statement one too: a database that is down or slow
is a note in the report ("incident history not checked: …"), never a hang or a failure.
"""

from __future__ import annotations

import os
from typing import Any

from ai_sysadmin.config import DatabaseConfig
from ai_sysadmin.preflight.closure import ClosureDiff
from ai_sysadmin.preflight.risks import RiskFlag, Severity
from ai_sysadmin.preflight.units import PlannedUnit, UnitAction

CONNECT_TIMEOUT_S = 2  # libpq's connect_timeout: whole seconds, and it treats 1 as 2
STATEMENT_TIMEOUT_MS = 2000
_NOT_CHANGING = frozenset({UnitAction.STOP})  # removed for good: it cannot fail anew


def not_configured(db: DatabaseConfig) -> str | None:
    """Why there is no database to ask (None: there is one to try)."""
    if db.dsn or db.host:
        return None
    sock = os.path.join(db.socket_dir, f".s.PGSQL.{db.port}")
    if os.path.exists(sock):
        return None
    return f"no PostgreSQL socket at {sock} (no database configured, or it is not running)"


def unchecked(why: str) -> RiskFlag:
    return RiskFlag("history-unchecked", Severity.INFO, f"incident history not checked: {why}")


def flags(db: DatabaseConfig, planned: list[PlannedUnit], diff: ClosureDiff | None) -> list[RiskFlag]:
    why = not_configured(db)
    if why is not None:
        return [unchecked(why)]
    import psycopg

    from ai_sysadmin.store.db import connect_kwargs
    from ai_sysadmin.store.switches import history_for

    units = sorted({p.unit for p in planned if p.action not in _NOT_CHANGING})
    incoming = {(c.package, v) for c in (diff.changes if diff else ()) for v in c.after}
    try:
        kw = connect_kwargs(db, connect_timeout=CONNECT_TIMEOUT_S)
        kw["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
        with psycopg.connect(db.conninfo(), **kw) as conn:
            found = history_for(conn, units, sorted({p for p, _ in incoming}))
    except psycopg.Error as exc:
        lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
        return [unchecked(f"PostgreSQL: {(lines[0] if lines else type(exc).__name__)[:300]}")]
    return _flags(found, incoming)


def _flags(found: dict[str, list[dict[str, Any]]], incoming: set[tuple[str, str]]) -> list[RiskFlag]:
    out: list[RiskFlag] = []
    by_unit: dict[str, list[int]] = {}
    for row in found["open"]:
        for u in row["units"]:
            by_unit.setdefault(u, []).append(int(row["id"]))
    for unit, ids in sorted(by_unit.items()):
        out.append(
            RiskFlag(
                "open-incident",
                Severity.WARN,
                f"{unit} has open incident(s) {', '.join(f'#{i}' for i in ids)} and the switch changes it",
                {"unit": unit, "incident_ids": ids},
            )
        )
    earlier: dict[str, list[dict[str, Any]]] = {}
    for row in found["failed_after"]:
        for u in row["units"]:
            earlier.setdefault(u, []).append(row)
    for unit, rows in sorted(earlier.items()):
        r = rows[0]  # the latest
        out.append(
            RiskFlag(
                "failed-after-switch",
                Severity.WARN,
                f"{unit} failed after an earlier switch (generation {_gen(r['from_generation'])} → "
                f"{_gen(r['to_generation'])}, incident #{r['incident_id']}) and this switch changes it again",
                {
                    "unit": unit,
                    "incident_ids": sorted({int(x["incident_id"]) for x in rows}),
                    "switch_ids": sorted({int(x["switch_id"]) for x in rows}),
                },
            )
        )
    for row in found["packages"]:
        if (row["package"], row["version"]) not in incoming:
            continue
        out.append(
            RiskFlag(
                "failed-package-returns",
                Severity.WARN,
                f"{row['package']} {row['version']} comes back: incident(s) "
                f"{', '.join(f'#{i}' for i in row['incident_ids'])} followed the switch that brought it in "
                f"(generation {_gen(row['from_generation'])} → {_gen(row['to_generation'])})",
                {
                    "package": row["package"],
                    "version": row["version"],
                    "switch_id": int(row["switch_id"]),
                    "incident_ids": [int(i) for i in row["incident_ids"]],
                },
            )
        )
    return out


def _gen(n: int | None) -> str:
    return "?" if n is None else str(n)
