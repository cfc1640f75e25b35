"""PostgreSQL connection settings shared by the store, the doctor and the CLI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.abc import Buffer
from psycopg.types.json import set_json_dumps
from psycopg.types.string import StrBinaryDumper, StrDumper, StrDumperUnknown

from ai_sysadmin.config import DatabaseConfig
from ai_sysadmin.sanitize import clean_json, escape_controls

if TYPE_CHECKING:  # psycopg_pool is imported where a pool is made
    from psycopg_pool import AsyncConnectionPool

# Name of the table that records applied schema migrations (see store.migrations).
SCHEMA_TABLE = "ai_sysadmin_schema"


def connect_kwargs(cfg: DatabaseConfig, connect_timeout: float = 5.0) -> dict[str, Any]:
    """Keyword arguments for psycopg.connect / AsyncConnection.connect / pool kwargs."""
    kw: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout)), "application_name": "ai-sysadmin"}
    if cfg.password is not None:
        kw["password"] = cfg.password.reveal()
    return kw


async def server_version(conn: psycopg.AsyncConnection) -> str:
    cur = await conn.execute("SELECT current_setting('server_version')")
    return str((await cur.fetchone())[0])  # type: ignore[index]


async def schema_version(conn: psycopg.AsyncConnection) -> int:
    """Highest applied migration, 0 when the schema was never migrated."""
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,))
    row = await cur.fetchone()
    if not row or not row[0]:
        return 0
    cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA_TABLE}")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


# Errors that mean "the database is not there right now" (stopped, restarting, network
# gone, pool could not hand out a connection in time): the caller spools and retries.
# Everything else (a constraint, a bug in SQL) is a real error and is raised.
UNREACHABLE_ERRORS: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)


def is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, UNREACHABLE_ERRORS)


def _last_line(exc: BaseException) -> str:
    """The line of a libpq error that says what failed (the first; later ones are hints)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(exc).__name__


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL does not answer: commands say so in one line with the fix."""

    @classmethod
    def from_error(cls, exc: BaseException) -> DatabaseUnavailable:
        return cls(
            f"cannot reach PostgreSQL ({_last_line(exc)}); start postgresql.service or correct the "
            "database section, then see `ai-sysadmin doctor`"
        )


class SchemaNotMigrated(RuntimeError):
    """The database exists but the service never migrated it (or an older version did)."""

    @classmethod
    def from_error(cls, exc: BaseException | None = None) -> SchemaNotMigrated:
        why = f" ({_last_line(exc)})" if exc is not None else ""
        return cls(
            f"the database schema is not migrated{why}; start the service once "
            "(systemctl start ai-sysadmin; it applies the schema), then retry"
        )


async def require_schema(conn: psycopg.AsyncConnection, minimum: int = 1) -> int:
    """The applied schema version; SchemaNotMigrated below `minimum` (read-only commands call this first)."""
    version = await schema_version(conn)
    if version < minimum:
        raise SchemaNotMigrated.from_error()
    return version


class _SafeStr(StrDumperUnknown):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape_controls(obj))


class _SafeStrText(StrDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape_controls(obj))


class _SafeStrBinary(StrBinaryDumper):
    def dump(self, obj: str) -> Buffer | None:
        return super().dump(escape_controls(obj))


def _safe_json_dumps(obj: Any) -> str:
    # Module level, not a closure: psycopg caches dumpers per dumps function.
    return json.dumps(clean_json(obj, None))


def install_safe_adapters(conn: psycopg.AsyncConnection | psycopg.Connection) -> None:
    """Make every text and JSON parameter on `conn` storable, whoever wrote the query.

    PostgreSQL refuses NUL in `text` and `jsonb`; one journal line carrying it once
    stopped L1.  The batch appliers bound and clean their fields (ai_sysadmin.sanitize),
    but incidents, reviews, findings and actions are written directly with model and log
    text in them; adapting at the driver means no query can forget it.  The same
    escapes as the appliers (idempotent), so cleaned text passes unchanged.
    """
    # Registration order matters: the last dumper registered for a format is the default.
    conn.adapters.register_dumper(str, _SafeStrText)
    conn.adapters.register_dumper(str, _SafeStrBinary)
    conn.adapters.register_dumper(str, _SafeStr)
    set_json_dumps(_safe_json_dumps, context=conn)


async def _configure(conn: psycopg.AsyncConnection) -> None:
    install_safe_adapters(conn)


def make_pool(
    cfg: DatabaseConfig, *, min_size: int = 1, max_size: int = 4, timeout: float = 5.0
) -> AsyncConnectionPool:
    """An unopened AsyncConnectionPool for `cfg`: `await pool.open(wait=False)` at service start.

    `check` revalidates a pooled connection before handing it out, so after a
    PostgreSQL restart the first caller gets a fresh connection instead of a dead one.
    `timeout` bounds how long a caller waits while the server is down before it spools.
    """
    from psycopg_pool import AsyncConnectionPool

    return AsyncConnectionPool(
        cfg.conninfo(),
        kwargs=connect_kwargs(cfg, connect_timeout=timeout),
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        open=False,
        check=AsyncConnectionPool.check_connection,
        configure=_configure,
        name="ai-sysadmin",
    )
