"""The decision ledger: a person's decisions and the used approvals, in a schema the orchestrator does not own.

The orchestrator's role owns the main schema (it migrates), and an owner can rewrite or
delete any of its rows, drop its triggers and re-grant itself anything.  So the records
that must outlive a compromised orchestrator live in the schema `ai_sysadmin_ledger`,
created and owned by the *executor's* role at its start (`ensure`):

* `decisions`: append-only.  Every role may INSERT (and read); nobody may UPDATE,
  DELETE or TRUNCATE (no grant; the owner's own attempts hit a trigger).  A row can
  only add caution -- a rejection, a pause, a tripped breaker -- unless it carries a
  valid HMAC signature made with the approval key (a person's resume, a pause that
  shortens another, a breaker clearing), which the orchestrator does not hold.
* `used_approvals`: one row per signature the executor has acted on; only the executor
  writes it, so an approval runs once, across executor restarts and whatever happens to
  `audit_log`.  A fleet member's executor (docs/fleet.md) records its uses through
  `use_member_approval`, a function the executor's role owns and runs as itself: it
  accepts only a member's login role, and only an action addressed to that member's
  host -- the member never holds a privilege on the table.

A schema of that name owned by anyone else is not the ledger (someone squatted the
name): `untrusted` says so and the executor refuses to run person-approved actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ai_sysadmin.store.migrations import MEMBER_ROLE_PREFIX

SCHEMA = "ai_sysadmin_ledger"
DECISION_KINDS = ("reject", "pause", "resume", "trip", "clear_breaker")

# Fixed text (no input); every statement is idempotent, so `ensure` runs at each start.
_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.decisions (
    id bigserial PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ({", ".join(f"'{k}'" for k in DECISION_KINDS)})),
    action_id bigint,
    digest text,
    target text,
    until timestamptz,              -- pause: NULL = until a resume
    actor text NOT NULL,
    reason text NOT NULL DEFAULT '',
    at timestamptz NOT NULL,
    signature text,                 -- HMAC with the approval key (actions/signing.py)
    recorded_by name NOT NULL DEFAULT current_user,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS decisions_action ON {SCHEMA}.decisions (action_id) WHERE action_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS decisions_target ON {SCHEMA}.decisions (target, id) WHERE target IS NOT NULL;
CREATE TABLE IF NOT EXISTS {SCHEMA}.used_approvals (
    signature text PRIMARY KEY,
    action_id bigint NOT NULL,
    digest text NOT NULL,
    used_at timestamptz NOT NULL DEFAULT now()
);
CREATE OR REPLACE FUNCTION {SCHEMA}.append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.% is append-only (% refused)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP;
END $$;
DROP TRIGGER IF EXISTS append_only ON {SCHEMA}.decisions;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.decisions
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.append_only();
DROP TRIGGER IF EXISTS append_only_truncate ON {SCHEMA}.decisions;
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {SCHEMA}.decisions
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.append_only();
DROP TRIGGER IF EXISTS append_only ON {SCHEMA}.used_approvals;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.used_approvals
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.append_only();
DROP TRIGGER IF EXISTS append_only_truncate ON {SCHEMA}.used_approvals;
CREATE TRIGGER append_only_truncate BEFORE TRUNCATE ON {SCHEMA}.used_approvals
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.append_only();
REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA {SCHEMA} FROM PUBLIC;
GRANT USAGE ON SCHEMA {SCHEMA} TO PUBLIC;
-- Anyone may add a decision (unsigned ones only add caution) and read both tables.
-- recorded_by/recorded_at are the database's own: not insertable, so a signed resume's time can be
-- compared with when a pause really arrived (a replayed old resume ends nothing newer).
GRANT SELECT ON {SCHEMA}.decisions TO PUBLIC;
GRANT INSERT (kind, action_id, digest, target, until, actor, reason, at, signature) ON {SCHEMA}.decisions TO PUBLIC;
GRANT USAGE ON SEQUENCE {SCHEMA}.decisions_id_seq TO PUBLIC;
GRANT SELECT ON {SCHEMA}.used_approvals TO PUBLIC;
-- A fleet member's executor records its uses here (session_user: the member's login role,
-- which names its host; a SECURITY DEFINER function sees its own role as current_user).
CREATE OR REPLACE FUNCTION {SCHEMA}.use_member_approval(p_signature text, p_action_id bigint, p_digest text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    v_host text := CASE WHEN starts_with(session_user::text, '{MEMBER_ROLE_PREFIX}')
                        THEN substr(session_user::text, {len(MEMBER_ROLE_PREFIX) + 1}) END;
BEGIN
    IF v_host IS NULL OR NOT EXISTS (SELECT 1 FROM public.actions a WHERE a.id = p_action_id AND a.host = v_host) THEN
        RAISE EXCEPTION 'use_member_approval: action % is not addressed to this member', p_action_id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO {SCHEMA}.used_approvals (signature, action_id, digest) VALUES (p_signature, p_action_id, p_digest)
        ON CONFLICT (signature) DO NOTHING;
    RETURN FOUND;
END $$;
REVOKE ALL ON FUNCTION {SCHEMA}.use_member_approval(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SCHEMA}.use_member_approval(text, bigint, text) TO PUBLIC;
"""


class LedgerUnavailable(Exception):
    """The ledger does not exist yet (the executor creates it) or is not the executor's."""


@dataclass(frozen=True)
class Decision:
    id: int
    kind: str
    action_id: int | None
    digest: str | None
    target: str | None
    until: datetime | None
    actor: str
    reason: str
    at: datetime
    signature: str | None
    recorded_at: datetime


async def ensure(conn: psycopg.AsyncConnection) -> None:
    """Create or update the ledger as the executor's role; raises LedgerUnavailable when squatted."""
    async with conn.transaction():
        owner = await _owner(conn)
        if owner is not None and not owner[1]:
            raise LedgerUnavailable(
                f"schema {SCHEMA} is owned by {owner[0]!r}, not by this executor's role: "
                "drop it (as a superuser) and restart the executor"
            )
        await conn.execute(_DDL)  # fixed text from this module
    problem = await untrusted(conn)
    if problem:
        raise LedgerUnavailable(problem)


async def _owner(conn: psycopg.AsyncConnection) -> tuple[str, bool] | None:
    cur = await conn.execute(
        "SELECT pg_get_userbyid(nspowner), nspowner = (SELECT oid FROM pg_roles "
        "WHERE rolname = current_user) FROM pg_namespace WHERE nspname = %s",
        (SCHEMA,),
    )
    row = await cur.fetchone()
    return None if row is None else (str(row[0]), bool(row[1]))


async def exists(conn: psycopg.AsyncConnection) -> bool:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.decisions",))
    return bool((await cur.fetchone())[0])  # type: ignore[index]


async def untrusted(conn: psycopg.AsyncConnection) -> str | None:
    """Why the executor must not rely on the ledger (None: it exists and is this role's own)."""
    cur = await conn.execute(
        "SELECT c.relname, c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname IN ('decisions', 'used_approvals')",
        (SCHEMA,),
    )
    tables = {r[0]: r[1] for r in await cur.fetchall()}
    owner = await _owner(conn)
    if owner is None or set(tables) != {"decisions", "used_approvals"}:
        return f"the decision ledger ({SCHEMA}) does not exist; the executor creates it at its start"
    if not owner[1] or not all(tables.values()):
        return f"the decision ledger ({SCHEMA}) is not owned by the executor's role"
    return None


async def untrusted_for_member(conn: psycopg.AsyncConnection) -> str | None:
    """Why a fleet member's executor must not rely on the hub's ledger (None: it may).

    A member cannot own the ledger: the hub's executor does.  It must exist, whole, with
    the member's function, and be owned by one role that is neither the owner of the main
    tables (the orchestrator, which must not be able to rewrite it) nor this member.
    """
    cur = await conn.execute(
        "SELECT pg_get_userbyid(n.nspowner), "
        "  (SELECT array_agg(DISTINCT c.relowner) FROM pg_class c WHERE c.relnamespace = n.oid "
        "     AND c.relname IN ('decisions', 'used_approvals')), "
        "  (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid "
        "     AND c.relname IN ('decisions', 'used_approvals')), "
        "  n.nspowner, to_regprocedure(%s) IS NOT NULL, "
        "  (SELECT relowner FROM pg_class WHERE oid = to_regclass('public.actions')), "
        "  (SELECT oid FROM pg_roles WHERE rolname = current_user) "
        "FROM pg_namespace n WHERE n.nspname = %s",
        (f"{SCHEMA}.use_member_approval(text, bigint, text)", SCHEMA),
    )
    row = await cur.fetchone()
    if row is None or row[2] != 2 or not row[4]:
        return f"the hub's decision ledger ({SCHEMA}) is not there yet: the hub's executor creates it at its start"
    owner, table_owners, _, schema_owner, _, actions_owner, me = row
    if table_owners != [schema_owner] or schema_owner in (actions_owner, me):
        return f"the hub's decision ledger ({SCHEMA}, owned by {owner!r}) is not owned by the hub's executor's role"
    return None


async def use_member_approval(conn: psycopg.AsyncConnection, signature: str, action_id: int, digest: str) -> bool:
    """A member's `use_approval`, through the ledger owner's function; False when it was used before."""
    cur = await conn.execute(f"SELECT {SCHEMA}.use_member_approval(%s, %s, %s)", (signature, action_id, digest))
    return bool((await cur.fetchone())[0])  # type: ignore[index]


async def require(conn: psycopg.AsyncConnection) -> None:
    if not await exists(conn):
        raise LedgerUnavailable(
            f"the decision ledger ({SCHEMA}) does not exist yet: start ai-sysadmin-executor "
            "once (it creates the ledger)"
        )


async def record(
    conn: psycopg.AsyncConnection,
    kind: str,
    *,
    actor: str,
    at: datetime,
    reason: str = "",
    action_id: int | None = None,
    digest: str | None = None,
    target: str | None = None,
    until: datetime | None = None,
    signature: str | None = None,
) -> int:
    if kind not in DECISION_KINDS:
        raise ValueError(f"kind: not a ledger decision ({kind!r})")
    cur = await conn.execute(
        f"INSERT INTO {SCHEMA}.decisions (kind, action_id, digest, target, until, actor, reason, at, signature) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (kind, action_id, digest, target, until, actor, reason[:2000], at, signature),
    )
    return int((await cur.fetchone())[0])  # type: ignore[index]


async def _select(conn: psycopg.AsyncConnection, where: str, args: tuple[Any, ...]) -> list[Decision]:
    if not await exists(conn):
        return []
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"SELECT id, kind, action_id, digest, target, until, actor, reason, at, signature, recorded_at "
        f"FROM {SCHEMA}.decisions WHERE {where} ORDER BY id",
        args,
    )
    return [Decision(**r) for r in await cur.fetchall()]


async def rejections(conn: psycopg.AsyncConnection, action_id: int) -> list[Decision]:
    return await _select(conn, "kind = 'reject' AND action_id = %s", (action_id,))


async def pause_decisions(conn: psycopg.AsyncConnection) -> list[Decision]:
    return await _select(conn, "kind IN ('pause', 'resume')", ())


async def breaker_decisions(conn: psycopg.AsyncConnection, target: str | None = None) -> list[Decision]:
    if target is None:
        return await _select(conn, "kind IN ('trip', 'clear_breaker')", ())
    return await _select(conn, "kind IN ('trip', 'clear_breaker') AND target = %s", (target,))


async def use_approval(conn: psycopg.AsyncConnection, signature: str, action_id: int, digest: str) -> bool:
    """Record that the executor acts on this signed approval; False when it was used before."""
    cur = await conn.execute(
        f"INSERT INTO {SCHEMA}.used_approvals (signature, action_id, digest) "
        "VALUES (%s, %s, %s) ON CONFLICT (signature) DO NOTHING RETURNING 1",
        (signature, action_id, digest),
    )
    return await cur.fetchone() is not None
