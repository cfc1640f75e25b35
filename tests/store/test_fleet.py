"""Migration 9 (the host dimension) and fleet members' database roles, on the real PostgreSQL.

As member B's own role (a real LOGIN role, connected as itself): B's metrics go in only
through migration 12's function, as B's rows whatever B passes, and B can neither write
nor read `metrics` itself; a role not named as a member is refused by the function.  B
sees neither A's actions nor any other table.  Rows written before the migration, and
rows written without a host, are the local host's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ai_sysadmin.store import fleet
from ai_sysadmin.store.db import SCHEMA_TABLE
from ai_sysadmin.store.migrations import MEMBER_METRICS_MAX_ROWS, MIGRATIONS, latest_version, migrate
from rig.postgres import PgCluster

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HUB = "hub-1"


def _conninfo(cluster: PgCluster, db: str, role: str) -> str:
    return f"host={cluster.sockdir} port={cluster.port} user={role} dbname={db}"


@pytest.fixture()
def database(pg_cluster: PgCluster) -> Iterator[str]:
    name = f"fleet_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    try:
        yield name
    finally:
        if pg_cluster.running():
            pg_cluster.drop_database(name)


@pytest.fixture()
async def owner(pg_cluster: PgCluster, database: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """The schema owner's connection (the orchestrator's role in production), migrated."""
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(database), autocommit=True) as conn:
        await migrate(conn, host=HUB)
        yield conn


@pytest.fixture()
async def members(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection
) -> AsyncIterator[dict[str, str]]:
    """Member roles for two hosts (unique names: roles are cluster-wide)."""
    s = uuid.uuid4().hex[:6]
    hosts = {"a": f"web-a-{s}", "b": f"web-b-{s}"}
    for h in hosts.values():
        await fleet.create_member_role(owner, h)
    try:
        yield hosts
    finally:
        if pg_cluster.running():
            for h in hosts.values():
                await fleet.drop_member_role(owner, h)


async def _as(cluster: PgCluster, db: str, role: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(_conninfo(cluster, db, role), autocommit=True)


async def _metric(
    conn: psycopg.AsyncConnection, host: str | None, name: str = "cpu.percent", value: float = 1.0
) -> None:
    if host is None:
        await conn.execute("INSERT INTO metrics (ts, name, subject, value) VALUES (%s, %s, '', %s)", (NOW, name, value))
    else:
        await conn.execute(
            "INSERT INTO metrics (ts, name, subject, value, host) VALUES (%s, %s, '', %s, %s)", (NOW, name, value, host)
        )


async def _action(conn: psycopg.AsyncConnection, host: str, target: str) -> int:
    cur = await conn.execute(
        "INSERT INTO actions (action, params, risk, status, target, host) "
        "VALUES ('restart_unit', '{}', 'low', 'approved', %s, %s) RETURNING id",
        (target, host),
    )
    return (await cur.fetchone())[0]  # type: ignore[index]


# ------------------------------------------------------------------ migration 9


async def test_existing_rows_become_the_local_hosts(pg_cluster: PgCluster, database: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(database), autocommit=True) as conn:
        # The schema as version 8 left it, with rows in it.
        async with conn.transaction():
            await conn.execute(
                f"CREATE TABLE {SCHEMA_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for m in MIGRATIONS[:8]:
                await m.apply(conn)
                await conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (%s, %s)", (m.version, m.name))
        await conn.execute("INSERT INTO incidents (title, severity, category) VALUES ('old', 'high', 'unit-failure')")
        await conn.execute("INSERT INTO actions (action, risk, target) VALUES ('restart_unit', 'low', 'x.service')")
        await _metric(conn, None)
        await conn.execute(
            "INSERT INTO switches (switched_at, to_path, preflight) VALUES (%s, '/nix/store/x', '{}')", (NOW,)
        )
        for tid, host in (("t-journal", "from-journal"), ("t-none", None)):
            await conn.execute(
                "INSERT INTO triggers (id, severity, category, source, template, template_id, count, first_seen, "
                "last_seen, host) VALUES (%s, 'high', 'unit-failure', 'rule', 't', 'tid', 1, %s, %s, %s)",
                (tid, NOW, NOW, host),
            )

        # 9, and whatever came after it (its number is not fixed while fleet slices merge).
        assert await migrate(conn, host=HUB) == [m.version for m in MIGRATIONS[8:]]
        assert latest_version() >= 9
        for table in ("incidents", "actions", "metrics", "switches"):
            cur = await conn.execute(sql.SQL("SELECT DISTINCT host FROM {}").format(sql.Identifier(table)))
            assert await cur.fetchall() == [(HUB,)], table
        cur = await conn.execute("SELECT id, host FROM triggers ORDER BY id")
        assert await cur.fetchall() == [("t-journal", "from-journal"), ("t-none", HUB)]
        cur = await conn.execute("SELECT value FROM store_settings WHERE key = 'local_host'")
        assert await cur.fetchone() == (HUB,)

        # Code that names no host (today's writers) writes the local host's rows ...
        await _metric(conn, None, "mem.percent")
        cur = await conn.execute("SELECT host FROM metrics WHERE name = 'mem.percent'")
        assert await cur.fetchone() == (HUB,)
        # ... and an explicit NULL host (a journal entry without _HOSTNAME) too.
        await conn.execute(
            "INSERT INTO triggers (id, severity, category, source, template, template_id, count, first_seen, "
            "last_seen, host) VALUES ('t-new', 'high', 'unit-failure', 'rule', 't', 'tid', 1, %s, %s, NULL)",
            (NOW, NOW),
        )
        cur = await conn.execute("SELECT host FROM triggers WHERE id = 't-new'")
        assert await cur.fetchone() == (HUB,)
        with pytest.raises(psycopg.errors.NotNullViolation):
            await conn.execute("UPDATE incidents SET host = NULL")


async def test_migrations_11_and_12_grant_the_member_roles_that_exist(pg_cluster: PgCluster, database: str) -> None:
    """A member role made on a schema at 9 gets the executor's grants, under their policies, from 11,
    and from 12 the metrics function in place of its privileges on metrics."""
    host = f"web-e-{uuid.uuid4().hex[:6]}"
    role = fleet.member_role_name(host)
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(database), autocommit=True) as conn:
        async with conn.transaction():
            await conn.execute("SELECT set_config('ai_sysadmin.local_host', %s, true)", (HUB,))
            await conn.execute(
                f"CREATE TABLE {SCHEMA_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for m in MIGRATIONS[:9]:
                await m.apply(conn)
                await conn.execute(f"INSERT INTO {SCHEMA_TABLE} (version, name) VALUES (%s, %s)", (m.version, m.name))
        with pytest.raises(fleet.FleetError, match="not migrated"):
            await fleet.create_member_role(conn, host)  # refused: no policies on the new grants yet
        # What migration 9's create_member_role granted.
        r = sql.Identifier(role)
        await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(r))
        await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r))
        await conn.execute(sql.SQL("GRANT SELECT, INSERT ON metrics TO {}").format(r))
        await conn.execute(sql.SQL("GRANT SELECT ON actions TO {}").format(r))
        mine, other = await _action(conn, host, "a.service"), await _action(conn, "web-z", "z.service")
        for aid in (mine, other):
            await conn.execute(
                "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at) "
                "VALUES (%s, 'policy', 'policy', '', now(), now())",
                (aid,),
            )
        try:
            assert await migrate(conn, host=HUB) == [m.version for m in MIGRATIONS[9:]]
            async with await _as(pg_cluster, database, role) as member:
                cur = await member.execute("SELECT action_id FROM action_approvals")
                assert await cur.fetchall() == [(mine,)]
                # Migration 12: what 9 granted on metrics is gone; the function is the way in.
                for stmt in ("SELECT 1 FROM metrics", "INSERT INTO metrics (ts, name, value) VALUES (now(), 'x', 1)"):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                        await member.execute(stmt)
                assert await _write(member, [NOW], ["cpu.percent"], [""], [1.0]) == 1
            cur = await conn.execute("SELECT host FROM metrics")
            assert await cur.fetchall() == [(host,)]
        finally:
            await fleet.drop_member_role(conn, host)


async def test_host_indexes_exist(owner: psycopg.AsyncConnection) -> None:
    cur = await owner.execute("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE '%host%'")
    defs = dict(await cur.fetchall())
    for name, cols in (
        ("triggers_host_last_seen", "(host, last_seen DESC)"),
        ("incidents_host_status", "(host, status, updated_at DESC)"),
        ("actions_host_status", "(host, status, id)"),
        ("metrics_host_name_ts", "(host, name, ts DESC)"),
        ("switches_host_at", "(host, switched_at DESC)"),
    ):
        assert name in defs and defs[name].endswith(cols), (name, defs.get(name))


# ------------------------------------------------------------------ member isolation


_WRITE = "SELECT ai_sysadmin_member_metrics(%s::timestamptz[], %s::text[], %s::text[], %s::double precision[])"


async def _write(conn: psycopg.AsyncConnection, *columns: list[Any]) -> int:
    """One call of migration 12's function, as the member collector makes it."""
    cur = await conn.execute(_WRITE, columns)
    return (await cur.fetchone())[0]  # type: ignore[index]


async def test_member_writes_its_metrics_only_through_the_function_and_only_as_itself(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    a, b = members["a"], members["b"]
    await _metric(owner, a, value=11.0)  # what A's own role (or the hub) wrote
    async with await _as(pg_cluster, database, fleet.member_role_name(b)) as conn:
        # Its readings, unit states included: B's rows, whatever they say -- there is no host to pass.
        n = await _write(conn, [NOW, NOW], ["cpu.percent", "unit.failed"], ["", a], [22.0, 1.0])
        assert n == 2
        # A temporary table of B's named `metrics` does not catch the function's INSERT.
        await conn.execute(
            "CREATE TEMP TABLE metrics (ts timestamptz, name text, subject text, value float8, host text)"
        )
        await _write(conn, [NOW], ["mem.percent"], [""], [33.0])
        cur = await conn.execute("SELECT count(*) FROM pg_temp.metrics")
        assert await cur.fetchone() == (0,)
        await conn.execute("DROP TABLE pg_temp.metrics")
        # The table itself: nothing, on either backend (RLS would not hold on a hypertable's chunks).
        for stmt in (
            "SELECT host, value FROM metrics",
            f"INSERT INTO metrics (ts, name, subject, value, host) VALUES (now(), 'cpu.percent', '', 1, '{b}')",
            "UPDATE metrics SET value = 0",
            "DELETE FROM metrics",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                await conn.execute(stmt)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            async with conn.cursor().copy("COPY metrics (ts, name, subject, value, host) FROM STDIN") as cp:
                await cp.write_row((NOW, "cpu.percent", "", 1.0, b))
    cur = await owner.execute("SELECT host, name, subject, value FROM metrics ORDER BY value")
    assert await cur.fetchall() == [
        (b, "unit.failed", a, 1.0),
        (a, "cpu.percent", "", 11.0),
        (b, "cpu.percent", "", 22.0),
        (b, "mem.percent", "", 33.0),
    ]


async def test_the_metrics_function_refuses_every_role_not_named_as_a_member(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    """The API's role, granted EXECUTE by mistake, and a login role that SETs ROLE to a
    member's: refused (the host comes from the login role's name, and there is none)."""
    b = fleet.member_role_name(members["b"])
    role = f"api_{uuid.uuid4().hex[:8]}"
    r = sql.Identifier(role)
    await owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(r))
    try:
        await owner.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(r))
        await owner.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(fleet.MEMBER_FUNCTIONS[0]), r))
        await owner.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(b), r))
        async with await _as(pg_cluster, database, role) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is not a fleet member's role"):
                await _write(conn, [NOW], ["cpu.percent"], [""], [1.0])
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(b)))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is not a fleet member's role"):
                await _write(conn, [NOW], ["cpu.percent"], [""], [1.0])
    finally:
        await owner.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM {}").format(sql.SQL(fleet.MEMBER_FUNCTIONS[0]), r))
        await owner.execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(r))
        await owner.execute(sql.SQL("DROP ROLE {}").format(r))
    # Nobody else may call it at all: EXECUTE is not PUBLIC's.
    cur = await owner.execute(
        "SELECT has_function_privilege('public', %s, 'EXECUTE'), has_function_privilege(%s, %s, 'EXECUTE')",
        (fleet.MEMBER_FUNCTIONS[0], b, fleet.MEMBER_FUNCTIONS[0]),
    )
    assert await cur.fetchone() == (False, True)
    cur = await owner.execute("SELECT count(*) FROM metrics")
    assert await cur.fetchone() == (0,)


async def test_the_metrics_function_refuses_arrays_of_different_lengths_and_too_many_rows(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    async with await _as(pg_cluster, database, fleet.member_role_name(members["b"])) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"arrays of one length \(got 2, 1, 2, 2\)"):
            await _write(conn, [NOW, NOW], ["cpu.percent"], ["", ""], [1.0, 2.0])
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="arrays of one length"):
            await conn.execute(_WRITE, (None, ["cpu.percent"], [""], [1.0]))
        many = MEMBER_METRICS_MAX_ROWS + 1
        with pytest.raises(psycopg.errors.ProgramLimitExceeded, match=f"{many} rows in one call, at most 10000"):
            await _write(conn, [NOW] * many, ["cpu.percent"] * many, [""] * many, [1.0] * many)
        assert await _write(conn, [], [], [], []) == 0
        # The bound itself is one call.
        n = MEMBER_METRICS_MAX_ROWS
        assert await _write(conn, [NOW] * n, ["cpu.percent"] * n, [""] * n, [1.0] * n) == n
    cur = await owner.execute("SELECT count(*) FROM metrics WHERE host = %s", (members["b"],))
    assert await cur.fetchone() == (MEMBER_METRICS_MAX_ROWS,)


async def test_member_reads_only_actions_addressed_to_it(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    a, b = members["a"], members["b"]
    for_a = await _action(owner, a, "nginx.service")
    for_b = await _action(owner, b, "postgresql-backup.service")
    local = await _action(owner, HUB, "chromadb.service")
    async with await _as(pg_cluster, database, fleet.member_role_name(b)) as conn:
        cur = await conn.execute("SELECT id, target FROM actions ORDER BY id")
        assert await cur.fetchall() == [(for_b, "postgresql-backup.service")]
        cur = await conn.execute("SELECT count(*) FROM actions WHERE id = ANY(%s)", ([for_a, local],))
        assert await cur.fetchone() == (0,)
        # What an action is, and whose, is the hub's: only the execution columns are B's.
        for stmt in (
            "INSERT INTO actions (action, risk, host) VALUES ('restart_unit', 'low', current_user)",
            "UPDATE actions SET host = 'x'",
            "UPDATE actions SET params = '{}'",
            "UPDATE actions SET risk = 'low'",
            "DELETE FROM actions",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                await conn.execute(stmt)
    async with await _as(pg_cluster, database, fleet.member_role_name(a)) as conn:
        cur = await conn.execute("SELECT id FROM actions ORDER BY id")
        assert await cur.fetchall() == [(for_a,)]


async def test_member_moves_only_its_own_actions_and_only_as_an_executor(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    """Migration 11: B claims and completes B's approved actions; A's rows and approving are out of reach."""
    a, b = members["a"], members["b"]
    for_a = await _action(owner, a, "nginx.service")
    for_b = await _action(owner, b, "postgresql-backup.service")
    queued_b = await _action(owner, b, "cron.service")
    await owner.execute("UPDATE actions SET status = 'queued' WHERE id = %s", (queued_b,))
    for aid in (for_a, for_b):
        await owner.execute(
            "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at) "
            "VALUES (%s, 'policy', 'policy', '', now(), now() + interval '1 hour')",
            (aid,),
        )
    audit = "INSERT INTO audit_log (at, actor, event, subject) VALUES (now(), 'x', 'action.step', %s)"
    async with await _as(pg_cluster, database, fleet.member_role_name(b)) as conn:
        # A's action: invisible to B's UPDATE (row-level security), so nothing changes.
        cur = await conn.execute("UPDATE actions SET status = 'executing' WHERE id = %s", (for_a,))
        assert cur.rowcount == 0
        # Approving its own queued action, requeueing or rejecting one: refused whatever B writes.
        for action_id, to in ((queued_b, "approved"), (for_b, "queued"), (for_b, "rejected")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="runs approved actions only"):
                await conn.execute("UPDATE actions SET status = %s WHERE id = %s", (to, action_id))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            await conn.execute(
                "INSERT INTO action_approvals (action_id, kind, approver, reason, approved_at, expires_at) "
                "VALUES (%s, 'person', 'b', '', now(), now() + interval '1 hour')",
                (for_b,),
            )
        # Its own approved action: claimed and completed as an executor does.
        cur = await conn.execute("UPDATE actions SET status = 'executing', started_at = now() WHERE id = %s", (for_b,))
        assert cur.rowcount == 1
        await conn.execute("UPDATE actions SET status = 'verified', finished_at = now() WHERE id = %s", (for_b,))
        cur = await conn.execute("SELECT action_id FROM action_approvals ORDER BY action_id")
        assert await cur.fetchall() == [(for_b,)]
        # Steps, audit rows and breakers: its own actions' only.
        await conn.execute(
            "INSERT INTO action_steps (action_id, from_status, to_status, actor, reason) "
            "VALUES (%s, 'executing', 'verified', 'x', '')",
            (for_b,),
        )
        await conn.execute(audit, (f"action:{for_b}",))
        for stmt, args in (
            (
                "INSERT INTO action_steps (action_id, from_status, to_status, actor, reason) "
                "VALUES (%s, 'approved', 'refused', 'x', '')",
                (for_a,),
            ),
            (audit, (f"action:{for_a}",)),
            (audit, ("actions",)),
            ("INSERT INTO action_breakers (target, action_id, reason) VALUES ('nginx.service', %s, 'x')", (for_a,)),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security policy"):
                await conn.execute(stmt, args)
    cur = await owner.execute("SELECT id, status FROM actions ORDER BY id")
    assert await cur.fetchall() == [(for_a, "approved"), (for_b, "verified"), (queued_b, "queued")]


@pytest.mark.parametrize(
    "table",
    [
        "findings",
        "audit_log",  # INSERT only (its own actions' rows)
        "switches",
        "cursors",
        "ingest_batches",
        "reviews",
        "llm_calls",
    ],
)
async def test_member_has_nothing_else(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str], table: str
) -> None:
    async with await _as(pg_cluster, database, fleet.member_role_name(members["b"])) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            await conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table)))


async def test_local_roles_keep_every_host(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    """A role that is not a member's (the hub's API or executor) sees every host's rows."""
    a, b = members["a"], members["b"]
    role = f"local_{uuid.uuid4().hex[:8]}"
    await owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        for table in ("metrics", "actions"):
            await owner.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role)))
        await _metric(owner, a)
        await _metric(owner, b)
        await _action(owner, a, "a.service")
        await _action(owner, b, "b.service")
        async with await _as(pg_cluster, database, role) as conn:
            cur = await conn.execute("SELECT fleet_member_host()")
            assert await cur.fetchone() == (None,)
            cur = await conn.execute("SELECT host FROM metrics ORDER BY host")
            assert [h for (h,) in await cur.fetchall()] == sorted([a, b])
            cur = await conn.execute("SELECT host FROM actions ORDER BY host")
            assert [h for (h,) in await cur.fetchall()] == sorted([a, b])
    finally:
        await owner.execute(sql.SQL("REVOKE ALL ON metrics, actions FROM {}").format(sql.Identifier(role)))
        await owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


async def test_member_roles_are_listed_idempotent_and_dropped(
    owner: psycopg.AsyncConnection, members: dict[str, str]
) -> None:
    listed = await fleet.member_roles(owner)
    for h in members.values():
        assert listed[h] == fleet.member_role_name(h)
    assert await fleet.create_member_role(owner, members["a"]) == fleet.member_role_name(members["a"])
    extra = f"web-c-{uuid.uuid4().hex[:6]}"
    await fleet.create_member_role(owner, extra)
    assert await fleet.drop_member_role(owner, extra) is True
    assert extra not in await fleet.member_roles(owner)
    assert await fleet.drop_member_role(owner, extra) is False


@pytest.mark.parametrize("host", ["", "-web", "web 1", "web/1", "x" * 45, "wéb"])
def test_member_role_names_refuse_bad_host_ids(host: str) -> None:
    with pytest.raises(fleet.FleetError):
        fleet.member_role_name(host)


def test_member_role_name_fits_postgres() -> None:
    assert fleet.member_role_name("x" * 44) == "ai_sysadmin_member_" + "x" * 44
    assert len(fleet.member_role_name("x" * 44)) == 63


async def test_creating_a_role_needs_createrole(
    pg_cluster: PgCluster, database: str, owner: psycopg.AsyncConnection
) -> None:
    role = f"plain_{uuid.uuid4().hex[:8]}"
    await owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        async with await _as(pg_cluster, database, role) as conn:
            with pytest.raises(fleet.FleetError, match="CREATEROLE"):
                await fleet.create_member_role(conn, f"web-d-{uuid.uuid4().hex[:6]}")
    finally:
        await owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
