"""`/metrics`: the API's own series plus the service's counters read from the store at scrape time.

The API's registry is its own (no global prometheus registry): requests, latency and
time-to-first-token histograms, tokens, upstream errors, background requests.  The
service process has no HTTP port, so what it did -- triggers, incidents, findings,
reviews, actions by status and policy decision, LLM calls per role -- is counted from
PostgreSQL when Prometheus scrapes (a few indexed `count(*)`s), and the outage spool
from its directory when this process may read it.

Rows that belong to a host (triggers, incidents, actions; docs/fleet.md) are counted per
`host` label: an incident under the host it opened on, so the sum over hosts is the
total.  `ai_sysadmin_incidents_on_host` counts each fleet incident on every host it
reached, `ai_sysadmin_fleet_incidents` the incidents seen on more than one host.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

# Latency buckets: pass-through overhead is milliseconds, a model answer seconds to minutes.
_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_TTFT = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "ai_sysadmin_api_requests",
            "API requests by endpoint, model and HTTP status",
            ["endpoint", "model", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "ai_sysadmin_api_request_seconds",
            "Request duration until the last byte",
            ["endpoint", "model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ttft = Histogram(
            "ai_sysadmin_api_ttft_seconds",
            "Time to the first streamed byte of a model answer",
            ["model"],
            buckets=_TTFT,
            registry=r,
        )
        self.tokens = Counter(
            "ai_sysadmin_api_tokens", "Tokens reported by the model servers", ["model", "kind"], registry=r
        )
        self.upstream_errors = Counter(
            "ai_sysadmin_api_upstream_errors", "Model server failures seen by the API", ["role", "kind"], registry=r
        )
        self.background = Counter(
            "ai_sysadmin_api_background_requests",
            "Open WebUI background requests answered by the cheap role",
            ["task"],
            registry=r,
        )
        self.in_flight = Gauge("ai_sysadmin_api_in_flight", "Requests in flight", ["model"], registry=r)
        self.connections_closed = Counter(
            "ai_sysadmin_api_connections_closed",
            "Connections the API closed before they authenticated (header_timeout, unauthenticated_cap)",
            ["reason"],
            registry=r,
        )

    def tokens_from(self, model: str, usage: tuple[int, int] | None) -> None:
        if usage:
            self.tokens.labels(model, "prompt").inc(usage[0])
            self.tokens.labels(model, "completion").inc(usage[1])


class StoreSnapshot(Collector):
    """Families computed by `refresh()` (async, before each scrape) and yielded by `collect()`."""

    def __init__(self, pool: AsyncConnectionPool | None, spool_dir: str | None, spool_max: int):
        self._pool = pool
        self._spool_dir = spool_dir
        self._spool_max = spool_max
        self._families: list[GaugeMetricFamily] = []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families)

    async def refresh(self, timeout: float = 3.0) -> None:
        fams: list[GaugeMetricFamily] = []
        up = GaugeMetricFamily("ai_sysadmin_store_up", "1 when PostgreSQL answered this scrape")
        try:
            fams.extend(await _db_families(self._pool, timeout))
            up.add_metric([], 1)
        except Exception as exc:  # a down database is a value, not a scrape failure
            log.debug("store metrics: %s", exc)
            up.add_metric([], 0)
        fams.append(up)
        fams.extend(self._spool_families())
        self._families = fams

    def _spool_families(self) -> list[GaugeMetricFamily]:
        if not self._spool_dir:
            return []
        try:
            entries = [e for e in os.scandir(self._spool_dir) if e.name.endswith(".jsonl")]
            total = sum(e.stat().st_size for e in entries)
        except OSError:
            return []  # not readable by the API's user: the service logs and doctor report it
        b = GaugeMetricFamily("ai_sysadmin_spool_bytes", "Bytes waiting in the outage spool")
        b.add_metric([], total)
        s = GaugeMetricFamily("ai_sysadmin_spool_segments", "Segment files in the outage spool")
        s.add_metric([], len(entries))
        f = GaugeMetricFamily("ai_sysadmin_spool_fill_ratio", "Outage spool fill (bytes / bound)")
        f.add_metric([], total / self._spool_max if self._spool_max else 0.0)
        return [b, s, f]


# (family name, help, table, label columns). Counted only when the table (and columns) exist,
# so the page works on every schema version; tables with a `host` column are also counted by host.
_COUNTS = (
    ("ai_sysadmin_triggers", "Triggers recorded (rows retained) by severity", "triggers", ("severity",)),
    ("ai_sysadmin_incidents", "Incidents by status", "incidents", ("status",)),
    ("ai_sysadmin_findings", "Findings by layer", "findings", ("layer",)),
    ("ai_sysadmin_reviews", "L3 reviews by outcome", "reviews", ("outcome",)),
    ("ai_sysadmin_actions", "Actions by status", "actions", ("status",)),
    ("ai_sysadmin_actions_by_decision", "Actions by policy decision and risk", "actions", ("decision", "risk")),
    ("ai_sysadmin_action_steps", "Action state changes by target status", "action_steps", ("to_status",)),
    ("ai_sysadmin_llm_calls", "Model calls recorded by role and outcome", "llm_calls", ("role", "outcome")),
    ("ai_sysadmin_llm_calls_by_layer", "Model calls recorded by layer", "llm_calls", ("layer",)),
)


async def _db_families(pool: AsyncConnectionPool | None, timeout: float) -> list[GaugeMetricFamily]:
    if pool is None:
        raise RuntimeError("no database pool")
    fams: list[GaugeMetricFamily] = []
    async with pool.connection(timeout=timeout) as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        )
        columns: dict[str, set[str]] = {}
        for table, column in await cur.fetchall():
            columns.setdefault(table, set()).add(column)
        for name, help_text, table, base in _COUNTS:
            if not set(base) <= columns.get(table, set()):
                continue
            labels = (*base, "host") if "host" in columns[table] else base
            cols = ", ".join(labels)  # identifiers from the table above, never input
            cur = await conn.execute(f"SELECT {cols}, count(*) FROM {table} GROUP BY {cols}")
            fam = GaugeMetricFamily(name, help_text, labels=list(labels))
            for row in await cur.fetchall():
                fam.add_metric([str(v) if v is not None else "" for v in row[:-1]], row[-1])
            fams.append(fam)
        if {"role", "prompt_tokens", "completion_tokens"} <= columns.get("llm_calls", set()):
            cur = await conn.execute(
                "SELECT role, sum(prompt_tokens), sum(completion_tokens) FROM llm_calls GROUP BY role"
            )
            fam = GaugeMetricFamily("ai_sysadmin_llm_tokens", "Tokens of recorded model calls", labels=["role", "kind"])
            for role, prompt, completion in await cur.fetchall():
                fam.add_metric([role, "prompt"], prompt or 0)
                fam.add_metric([role, "completion"], completion or 0)
            fams.append(fam)
        if "incident_hosts" in columns:
            fams.extend(await _host_incident_families(conn))
    return fams


async def _host_incident_families(conn: Any) -> list[GaugeMetricFamily]:
    """Incidents by every host they reached, and fleet incidents (migration 10's incident_hosts)."""
    from ai_sysadmin.store.incidents import count_fleet, count_on_hosts

    on_host = GaugeMetricFamily(
        "ai_sysadmin_incidents_on_host",
        "Incidents by status and by every host they were seen on (a fleet incident counts on each)",
        labels=["status", "host"],
    )
    for status, host, n in await count_on_hosts(conn):
        on_host.add_metric([status, host], n)
    fleet = GaugeMetricFamily(
        "ai_sysadmin_fleet_incidents", "Incidents seen on more than one host, by status", labels=["status"]
    )
    for status, n in await count_fleet(conn):
        fleet.add_metric([status], n)
    return [on_host, fleet]


def render(*registries: CollectorRegistry) -> bytes:
    started = time.monotonic()
    out = b"".join(generate_latest(r) for r in registries)
    log.debug("metrics rendered in %.1f ms", (time.monotonic() - started) * 1000)
    return out
