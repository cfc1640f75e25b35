"""The composition root of the short administrative commands (`actions`, `pause`/`resume`,
`incidents`): one single-connection pool, opened and closed here.

They need nothing but the database: no model, no knowledge base, no writer.  The pool is
opened with a wait so that a PostgreSQL that does not answer is the caller's one-line
error (psycopg.OperationalError or psycopg_pool.PoolTimeout), never a hang, and it is
closed on every way out, including that one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import Config
from ai_sysadmin.store.db import make_pool

OPEN_TIMEOUT = 10.0  # seconds for PostgreSQL to answer before the command says so


@asynccontextmanager
async def admin_pool(cfg: Config) -> AsyncIterator[AsyncConnectionPool]:
    pool = make_pool(cfg.database, max_size=1)
    try:
        await pool.open(wait=True, timeout=OPEN_TIMEOUT)
        yield pool
    finally:
        await pool.close()
