"""Least-privilege GRANTs for the executor's and the API's database roles.

The orchestrator's role owns the schema (it migrates); after migrating it grants the
other two roles exactly what they need, idempotently (GRANT of a held privilege is a
no-op; privileges not listed are REVOKEd first, so a narrowed list takes effect):

* executor (`database.executor_role`): reads actions, approvals, breakers, the pause,
  the audit log and triggers (verification); writes only the execution columns of `actions`, steps,
  audit, breakers, and reopens incidents.
* API (`database.api_role`): reads incidents, findings, actions, status data; writes
  approvals and rejections (status columns of `actions`, steps, audit), and what its chat
  model's investigations record (proposals, diagnosis findings, model-call accounting).

Ownership cannot be restrained this way -- the orchestrator can write any row -- which is
why a person's approval is also signed (actions/signing.py), and why the executor gets
CREATE on the database: it creates and owns the decision ledger (store/ledger.py), the
schema holding rejections, pauses, breaker decisions and used approvals, which the
orchestrator may add caution to but not rewrite.  No role is granted TRUNCATE.  Roles are created by
the NixOS module (or an admin); a role that does not exist is reported and skipped.
Tables a later migration has not created yet are skipped too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.config import DatabaseConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grant:
    table: str
    privilege: str  # SELECT | INSERT | UPDATE | DELETE
    columns: tuple[str, ...] = ()


EXECUTOR_GRANTS: tuple[Grant, ...] = (
    Grant("actions", "SELECT"),
    Grant(
        "actions",
        "UPDATE",
        ("status", "updated_at", "started_at", "finished_at", "executed_by", "result", "verification"),
    ),
    Grant("action_approvals", "SELECT"),
    Grant("action_steps", "SELECT"),
    Grant("action_steps", "INSERT"),
    Grant("action_breakers", "SELECT"),
    Grant("action_breakers", "INSERT"),
    Grant("audit_log", "SELECT"),
    Grant("audit_log", "INSERT"),
    Grant("store_settings", "SELECT"),
    Grant("triggers", "SELECT"),
    Grant("incidents", "SELECT"),
    Grant("incidents", "UPDATE", ("status", "updated_at", "resolved_at")),
    Grant("ai_sysadmin_schema", "SELECT"),
    # A rollback's verification: the units the incident attributed to the switch are active again.
    Grant("switch_incidents", "SELECT"),
)

API_GRANTS: tuple[Grant, ...] = (
    Grant("incidents", "SELECT"),
    Grant("incident_hosts", "SELECT"),
    Grant("triggers", "SELECT"),
    Grant("findings", "SELECT"),
    Grant("reviews", "SELECT"),
    Grant("metrics", "SELECT"),
    Grant("llm_calls", "SELECT"),
    Grant("store_settings", "SELECT"),
    Grant("actions", "SELECT"),
    Grant("actions", "UPDATE", ("status", "updated_at")),
    Grant("action_steps", "SELECT"),
    Grant("action_steps", "INSERT"),
    Grant("action_approvals", "SELECT"),
    Grant("action_approvals", "INSERT"),
    Grant("action_breakers", "SELECT"),
    # A person's (signed) clearing also closes the orchestrator's advisory copy.
    Grant("action_breakers", "UPDATE", ("cleared_at", "cleared_by")),
    Grant("audit_log", "SELECT"),
    Grant("audit_log", "INSERT"),
    Grant("ai_sysadmin_schema", "SELECT"),
    # The `ai-sysadmin` chat model runs L4 investigations in the API process: they record
    # proposals (through the same policy; the executor re-validates catalog risk, params and
    # approvals, so an inserted row grants nothing), their diagnosis finding, and the
    # model calls' accounting (the store writer de-duplicates batches by id).
    Grant("actions", "INSERT"),
    Grant("findings", "INSERT"),
    Grant("findings", "UPDATE", ("detail",)),
    Grant("llm_calls", "INSERT"),
    Grant("ingest_batches", "SELECT"),
    Grant("ingest_batches", "INSERT"),
    # status: the last switch, its preflight verdict, what failed after it.
    Grant("switches", "SELECT"),
    Grant("switch_incidents", "SELECT"),
)

SEQUENCES = {
    "actions": "actions_id_seq",
    "findings": "findings_id_seq",
    "action_steps": "action_steps_id_seq",
    "action_breakers": "action_breakers_id_seq",
    "audit_log": "audit_log_id_seq",
    "action_approvals": "action_approvals_id_seq",
}


async def _role_exists(conn: psycopg.AsyncConnection, role: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return await cur.fetchone() is not None


async def _existing_tables(conn: psycopg.AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'S')"
    )
    return {r[0] for r in await cur.fetchall()}


async def _grant_role(conn: psycopg.AsyncConnection, role: str, grants: tuple[Grant, ...]) -> list[str]:
    tables = await _existing_tables(conn)
    r = sql.Identifier(role)
    done: list[str] = []
    row = await (await conn.execute("SELECT current_schema()")).fetchone()
    assert row is not None  # SELECT without FROM returns exactly one row
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(row[0]), r))
    wanted = {g.table for g in grants} | set(SEQUENCES.values())
    for table in sorted(wanted & tables):
        # Start from nothing on each table we manage, so a removed privilege is really gone.
        await conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), r))
    for g in grants:
        if g.table not in tables:
            continue
        t = sql.Identifier(g.table)
        if g.columns:
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in g.columns)
            await conn.execute(sql.SQL("GRANT {} ({}) ON {} TO {}").format(sql.SQL(g.privilege), cols, t, r))
        else:
            await conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(g.privilege), t, r))
        if g.privilege == "INSERT" and g.table in SEQUENCES and SEQUENCES[g.table] in tables:
            await conn.execute(
                sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(SEQUENCES[g.table]), r)
            )
        done.append(f"{g.privilege}{'(' + ','.join(g.columns) + ')' if g.columns else ''} {g.table}")
    return done


async def apply_grants(
    target: AsyncConnectionPool | psycopg.AsyncConnection, db: DatabaseConfig
) -> dict[str, list[str]]:
    """GRANT the executor and API roles their privileges; returns what was granted per role."""
    if isinstance(target, AsyncConnectionPool):
        async with target.connection() as conn:
            return await apply_grants(conn, db)
    conn = target
    out: dict[str, list[str]] = {}
    async with conn.transaction():
        wanted: dict[str, tuple[Grant, ...]] = {}
        for role, grants in ((db.executor_role, EXECUTOR_GRANTS), (db.api_role, API_GRANTS)):
            if role:  # one role for both parts gets both lists
                wanted[role] = wanted.get(role, ()) + grants
        for role, grants in wanted.items():
            if not await _role_exists(conn, role):
                log.warning("database role %r does not exist; no grants applied for it", role)
                continue
            out[role] = await _grant_role(conn, role, grants)
        if db.executor_role and db.executor_role in out:
            # The executor creates its own schema, the decision ledger, at its start.
            dbname = (await (await conn.execute("SELECT current_database()")).fetchone())[0]  # type: ignore[index]
            await conn.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(dbname), sql.Identifier(db.executor_role)
                )
            )
            out[db.executor_role].append("CREATE database (decision ledger)")
    return out
