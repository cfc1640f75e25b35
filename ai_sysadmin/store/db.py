"""PostgreSQL connection settings shared by the store, the doctor and the CLI."""

from __future__ import annotations

from typing import Any

import psycopg

from ai_sysadmin.config import DatabaseConfig

# Name of the table that records applied schema migrations (see store.migrations).
SCHEMA_TABLE = "ai_sysadmin_schema"


def connect_kwargs(cfg: DatabaseConfig, connect_timeout: float = 5.0) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect / AsyncConnection.connect / pool kwargs."""
    kw: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout)),
                          "application_name": "ai-sysadmin"}
    if cfg.password is not None:
        kw["password"] = cfg.password.reveal()
    return kw


async def schema_version(conn: psycopg.AsyncConnection) -> int:
    """Highest applied migration, 0 when the schema was never migrated."""
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,))
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
