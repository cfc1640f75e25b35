"""Every connection of the store's pool makes text and JSON parameters storable.

Incidents, findings, reviews and actions are written by direct queries that carry model
and log text; PostgreSQL refuses NUL in text and jsonb.  The pool's adapters escape it
(and the other unsafe characters) for every query, so none of them can forget it.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from ai_sysadmin.config import parse_config
from ai_sysadmin.store.db import make_pool
from ai_sysadmin.store.migrations import migrate


async def test_direct_writes_with_nul_and_controls_are_stored_escaped(pg_database: dict[str, Any]) -> None:
    cfg = parse_config({"database": pg_database}, env={})
    pool = make_pool(cfg.database, max_size=1)
    await pool.open(wait=True, timeout=10)
    try:
        await migrate(pool)
        hostile = "evil\x00title \x1b[31m\u202e"
        async with pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO incidents (title, severity, category) VALUES (%s, 'high', 'crash') RETURNING id",
                (hostile,),
            )
            iid = (await cur.fetchone())[0]
            await conn.execute(
                "INSERT INTO findings (incident_id, layer, severity, title, detail) "
                "VALUES (%s, 'review', 'high', %s, %s)",
                (iid, "summary\x00", Jsonb({"k\x00": ["v\x00", 1.5, None], "nan": float("nan")})),
            )
            cur = await conn.execute("SELECT title FROM incidents WHERE id = %s", (iid,))
            assert (await cur.fetchone())[0] == "evil\\x00title \\x1b[31m\\u202e"
            cur = await conn.execute("SELECT title, detail FROM findings WHERE incident_id = %s", (iid,))
            title, detail = await cur.fetchone()
            assert title == "summary\\x00"
            assert detail == {"k\\x00": ["v\\x00", 1.5, None], "nan": "nan"}
            # Ordinary text, tabs and newlines included, is stored exactly as given.
            cur = await conn.execute("SELECT %s::text", ("plain\ttext\nnext line ✓",))
            assert (await cur.fetchone())[0] == "plain\ttext\nnext line ✓"
    finally:
        await pool.close()
