"""Fleet members' database roles: each member writes and reads only its own host's rows.

A member (docs/fleet.md) reaches the hub's PostgreSQL as a role of its own, named
`ai_sysadmin_member_<host>`. Its metric and unit-state rows (unit states are metrics:
`unit.failed`, `units.failed`) go through migration 12's function
`ai_sysadmin_member_metrics`, which takes the host from the caller's login role; the
role holds no privilege on `metrics` itself, so this holds on a TimescaleDB hypertable
too, whose chunks do not carry row-level security. Migration 9 put row-level security on
the tables such a role is granted anything on (store/migrations.py `RLS_TABLES`): the
policy takes the host from the role's name. Migration 11 adds what its executor needs
(MEMBER_GRANTS' second part), each under a policy that limits it to its own host's rows:
claim and complete the actions addressed to it (the status and result columns; a trigger
allows only an executor's moves, so it cannot approve anything), read their approvals,
write their steps, audit rows and breakers, read its own incidents and triggers for
verification, reopen its own incidents. On every other table it holds no privilege at
all.

Creating a role needs CREATEROLE (an admin, or the hub's `postgres`); the GRANTs need the
schema owner (the orchestrator's role) or a superuser.  The password is set apart
(`set_member_password`, `ai-sysadmin fleet add-member`): as a SCRAM-SHA-256 verifier
computed on this side, as psql's `\\password` does, so it never travels or is logged in
clear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ai_sysadmin.store.db import schema_version
from ai_sysadmin.store.migrations import MEMBER_METRICS_SIGNATURE, MEMBER_ROLE_PREFIX, latest_version

# What a member's role may do; everything else is refused by the absence of a GRANT,
# and these rows are limited to its host by migration 9's and 11's policies.
MEMBER_GRANTS: tuple[tuple[str, str], ...] = (
    # migration 9: the executor's reading of its actions
    ("actions", "SELECT"),
    # migration 11: the member executor (actions/executor.py), as the hub's executor's
    # grants (store/grants.py) less what only the hub decides
    ("actions", "UPDATE (status, updated_at, started_at, finished_at, executed_by, result, verification)"),
    ("action_approvals", "SELECT"),
    ("action_steps", "SELECT"),
    ("action_steps", "INSERT"),
    ("action_breakers", "SELECT"),
    ("action_breakers", "INSERT"),
    ("audit_log", "INSERT"),
    ("incidents", "SELECT"),
    ("incidents", "UPDATE (status, updated_at, resolved_at)"),
    ("triggers", "SELECT"),
    ("switch_incidents", "SELECT"),
    ("store_settings", "SELECT"),
    ("ai_sysadmin_schema", "SELECT"),
)
# The sequences behind the INSERTs above (a serial id).
MEMBER_SEQUENCES = ("action_steps_id_seq", "action_breakers_id_seq", "audit_log_id_seq")
# Migration 12: the collector's only way to write (its metrics and unit states).
MEMBER_FUNCTIONS = (MEMBER_METRICS_SIGNATURE,)
# Tables a member must hold nothing on although earlier versions granted it: `metrics`
# (migration 9 gave INSERT and SELECT; a hypertable's chunks would not limit them).
MEMBER_REVOKED = ("metrics",)
# PostgreSQL truncates identifiers at 63 bytes; a longer name would silently lose part
# of the host and so match another host's rows.
_MAX_HOST = 63 - len(MEMBER_ROLE_PREFIX)
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class FleetError(Exception):
    """A member role cannot be made as asked (bad host id, unsupported storage, no privilege)."""


def member_role_name(host: str) -> str:
    """The database role of the member `host`; the policies read the host back from it."""
    if not _HOST_RE.match(host) or len(host) > _MAX_HOST:
        raise FleetError(
            f"not a member host id: {host!r} (letters, digits, . _ -; at most {_MAX_HOST} "
            "characters, so that the role name fits PostgreSQL's 63)"
        )
    return MEMBER_ROLE_PREFIX + host


async def _role_exists(conn: psycopg.AsyncConnection, role: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    return await cur.fetchone() is not None


async def create_member_role(conn: psycopg.AsyncConnection, host: str) -> str:
    """Create (or keep) the LOGIN role of member `host` and grant it MEMBER_GRANTS; returns its name.

    Idempotent.  Works on both metrics backends: the role holds nothing on `metrics` and
    writes through migration 12's function (a hypertable's chunks carry no RLS policy);
    every table it is granted is a plain table, under migration 9's or 11's policy.
    """
    role = member_role_name(host)
    async with conn.transaction():
        r = sql.Identifier(role)
        if not await _role_exists(conn, role):
            try:
                await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(r))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise FleetError(
                    f"cannot create role {role!r}: this connection's role needs CREATEROLE ({exc.diag.message_primary})"
                ) from None
        # In the same transaction: a refusal here leaves no role behind.
        try:
            await _check_schema(conn)
            await grant_member(conn, host)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise FleetError(
                f"cannot grant role {role!r} its privileges: this connection's role must own the "
                f"schema's tables or be a superuser ({exc.diag.message_primary})"
            ) from None
    return role


async def _check_schema(conn: psycopg.AsyncConnection) -> None:
    if await schema_version(conn) < latest_version():
        # Before migration 11 the tables MEMBER_GRANTS names carry no policy yet: a role
        # granted them then would see every host's rows.
        raise FleetError("the database is not migrated to this version yet: start the service once first")


async def grant_member(conn: psycopg.AsyncConnection, host: str) -> None:
    """GRANT member `host`'s role MEMBER_GRANTS and MEMBER_FUNCTIONS, REVOKE MEMBER_REVOKED
    (idempotent; tables and functions not there yet are skipped)."""
    r = sql.Identifier(member_role_name(host))
    schema = (await (await conn.execute("SELECT current_schema()")).fetchone())[0]  # type: ignore[index]
    await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), r))
    present = await _relations(conn, {t for t, _ in MEMBER_GRANTS} | set(MEMBER_SEQUENCES) | set(MEMBER_REVOKED))
    for table in MEMBER_REVOKED:
        if table in present:  # on a hypertable TimescaleDB carries the REVOKE to its chunks
            await conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), r))
    for function in await _functions(conn):  # function: fixed text from MEMBER_FUNCTIONS
        await conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(function), r))
    for table, privilege in MEMBER_GRANTS:
        if table in present:  # privilege: fixed text from MEMBER_GRANTS
            await conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), sql.Identifier(table), r))
    for seq in MEMBER_SEQUENCES:
        if seq in present:
            await conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sql.Identifier(seq), r))


async def _functions(conn: psycopg.AsyncConnection) -> list[str]:
    """MEMBER_FUNCTIONS that exist in this schema (not before their migration)."""
    cur = await conn.execute(
        "SELECT f FROM unnest(%s::text[]) AS f WHERE to_regprocedure(f) IS NOT NULL ORDER BY f",
        (list(MEMBER_FUNCTIONS),),
    )
    return [f for (f,) in await cur.fetchall()]


async def _relations(conn: psycopg.AsyncConnection, names: set[str]) -> set[str]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relname = ANY(%s)",
        (sorted(names),),
    )
    return {name for (name,) in await cur.fetchall()}


async def drop_member_role(conn: psycopg.AsyncConnection, host: str) -> bool:
    """Revoke what the member `host` was granted and drop its role; False when it did not exist."""
    role = member_role_name(host)
    async with conn.transaction():
        if not await _role_exists(conn, role):
            return False
        try:
            await _revoke_and_drop(conn, role)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise FleetError(
                f"cannot drop role {role!r}: this connection's role needs CREATEROLE and to own the "
                f"schema's tables, or to be a superuser ({exc.diag.message_primary})"
            ) from None
    return True


async def _revoke_and_drop(conn: psycopg.AsyncConnection, role: str) -> None:
    r = sql.Identifier(role)
    schema = (await (await conn.execute("SELECT current_schema()")).fetchone())[0]  # type: ignore[index]
    present = await _relations(conn, {t for t, _ in MEMBER_GRANTS} | set(MEMBER_REVOKED))
    for table in sorted(present):
        await conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), r))
    for function in await _functions(conn):
        await conn.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM {}").format(sql.SQL(function), r))
    for seq in sorted(await _relations(conn, set(MEMBER_SEQUENCES))):
        await conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sql.Identifier(seq), r))
    await conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(sql.Identifier(schema), r))
    await conn.execute(sql.SQL("DROP ROLE {}").format(r))


async def database_name(conn: psycopg.AsyncConnection) -> str:
    """The database this connection is in: the one a member's URL names."""
    cur = await conn.execute("SELECT current_database()")
    return str((await cur.fetchone())[0])  # type: ignore[index]


async def member_roles(conn: psycopg.AsyncConnection) -> dict[str, str]:
    """The member roles of this cluster: host -> role."""
    cur = await conn.execute(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) ORDER BY rolname", (MEMBER_ROLE_PREFIX,)
    )
    return {name[len(MEMBER_ROLE_PREFIX) :]: name for (name,) in await cur.fetchall()}


@dataclass(frozen=True)
class MemberRole:
    """A member role as `ai-sysadmin fleet members` shows it."""

    host: str
    role: str
    can_login: bool
    # 'scram-sha-256', 'md5', 'none', or 'unknown': pg_authid, where the verifier is, is
    # readable by superusers only; a CREATEROLE admin cannot tell.
    password: str


_MEMBERS_WITH_PASSWORDS = (
    "SELECT rolname, rolcanlogin, CASE WHEN rolpassword IS NULL THEN 'none' "
    "WHEN starts_with(rolpassword, 'SCRAM-SHA-256$') THEN 'scram-sha-256' "
    "WHEN starts_with(rolpassword, 'md5') THEN 'md5' ELSE 'other' END "
    "FROM pg_catalog.pg_authid WHERE starts_with(rolname, %s) ORDER BY rolname"
)
_MEMBERS = (
    "SELECT rolname, rolcanlogin, 'unknown' FROM pg_catalog.pg_roles WHERE starts_with(rolname, %s) ORDER BY rolname"
)


async def list_member_roles(conn: psycopg.AsyncConnection) -> list[MemberRole]:
    """The member roles of this cluster, with whether each may log in and its password's kind."""
    cur = await conn.execute("SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')")
    readable = bool((await cur.fetchone())[0])  # type: ignore[index]
    cur = await conn.execute(_MEMBERS_WITH_PASSWORDS if readable else _MEMBERS, (MEMBER_ROLE_PREFIX,))
    return [
        MemberRole(name[len(MEMBER_ROLE_PREFIX) :], name, bool(login), kind)
        for name, login, kind in await cur.fetchall()
    ]


def scram_verifier(conn: psycopg.AsyncConnection, role: str, password: str) -> str:
    """`password`'s SCRAM-SHA-256 verifier (RFC 5802, RFC 7677), as PostgreSQL stores it.

    Computed here by libpq's PQencryptPasswordConn, which psql's `\\password` uses: a
    random 16-byte salt, SASLprep, and the iteration count the server reports
    (`scram_iterations`, PostgreSQL 16+; 4096 before).  No round trip: the algorithm is
    named, so libpq does not ask the server for `password_encryption`.
    """
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    if not verifier.startswith("SCRAM-SHA-256$"):  # never send anything that could be the clear text
        raise FleetError("libpq did not return a SCRAM-SHA-256 verifier; the password was not set")
    return verifier


async def set_member_password(conn: psycopg.AsyncConnection, host: str, password: str) -> None:
    """Set member `host`'s password: only its SCRAM verifier reaches the server (and its logs)."""
    role = member_role_name(host)
    if not password:
        raise FleetError("the password is empty")
    if not await _role_exists(conn, role):
        raise FleetError(f"no member role {role!r}: create it first")
    # A utility statement takes no bind parameters: the verifier goes in as a quoted literal.
    statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(role), sql.Literal(scram_verifier(conn, role, password))
    )
    try:
        await conn.execute(statement)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise FleetError(
            f"cannot set the password of {role!r}: this connection's role needs CREATEROLE ({exc.diag.message_primary})"
        ) from None
