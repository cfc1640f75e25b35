"""Fleet members' executors on the hub's real PostgreSQL, each as its member's own login role.

The hub's database has the three roles of the action tests (orchestrator, executor, API;
tests/actions/conftest.py) and two members, A and B.  An action a person approves on the
hub for A wakes A's executor through NOTIFY (the fallback poll is ten minutes) and runs on
A, never on B nor on the hub's own executor.  An approval is signed over the host: moved
to B, with its digest fixed up by the orchestrator, it does not verify on B.  With no hub
reachable a member's executor stays idle and says so once.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ai_sysadmin.actions import approvals, signing
from ai_sysadmin.actions.executor import Executor, HubSeat
from ai_sysadmin.actions.signing import load_key
from ai_sysadmin.compose.member import hub_seat
from ai_sysadmin.config import Config, parse_config
from ai_sysadmin.store import fleet
from ai_sysadmin.store.db import make_pool
from rig.net import free_port, wait_until
from rig.postgres import PgCluster
from tests.actions.conftest import RolesDB, config, digest_of


@pytest.fixture()
def members(roles_db: RolesDB) -> Iterator[dict[str, str]]:
    """Member roles A and B on the hub's database, made by an admin (CREATEROLE), as in docs/fleet.md."""
    s = uuid.uuid4().hex[:6]
    hosts = {"a": f"web-a-{s}", "b": f"web-b-{s}"}

    async def each(fn: Any) -> None:
        async with await psycopg.AsyncConnection.connect(
            roles_db.cluster.conninfo(roles_db.name), autocommit=True
        ) as conn:
            for h in hosts.values():
                await fn(conn, h)

    asyncio.run(each(fleet.create_member_role))
    try:
        yield hosts
    finally:
        if roles_db.cluster.running():
            asyncio.run(each(fleet.drop_member_role))


def member_config(tmp: Path, db: RolesDB, host: str, key: Path, **actions: Any) -> Config:
    dsn = f"host={db.cluster.sockdir} port={db.cluster.port} user={fleet.member_role_name(host)} dbname={db.name}"
    return parse_config(
        {
            "state_dir": str(tmp / "state" / host),
            "actions": {
                "approval_key_file": str(key),
                "nix_mode": "dry-run",
                "cooldown_seconds": 0,
                "verify_window_seconds": 0,
                "poll_interval": 600,  # a wake-up within seconds is NOTIFY's, not the poll's
                **actions,
            },
            "fleet": {"role": "member", "host": host, "hub_url": "https://hub.test:19532", "hub_dsn": dsn},
        },
        env={},
    )


def member(tmp: Path, db: RolesDB, host: str, key: Path, **actions: Any) -> Executor:
    cfg = member_config(tmp, db, host, key, **actions)
    seat = hub_seat(cfg)
    assert seat is not None and seat.host == host
    return Executor(cfg, out=lambda line: None, seat=seat)


async def _rows(db: RolesDB, q: str, *args: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(db.conninfo(db.orchestrator)) as c:
        cur = c.cursor(row_factory=dict_row)
        await cur.execute(q, args)
        return await cur.fetchall()


async def _queue_notify(db: RolesDB, host: str, message: str) -> int:
    """What the hub's orchestrator records for `host` (a queued low-risk notice), as its own role."""
    async with await psycopg.AsyncConnection.connect(db.conninfo(db.orchestrator), autocommit=True) as c:
        cur = await c.execute(
            "INSERT INTO actions (action, params, risk, status, target, host, source) "
            "VALUES ('notify', %s, 'low', 'queued', 'notify', %s, 'cli') RETURNING id",
            (Jsonb({"message": message}), host),
        )
        return int((await cur.fetchone())[0])  # type: ignore[index]


async def _once(ex: Executor) -> int:
    conn = await ex.connect()
    try:
        return await ex.process_pending(conn)
    finally:
        await conn.close()


def test_an_approval_is_signed_over_the_host() -> None:
    key = b"k" * 32
    at = datetime(2026, 1, 1, tzinfo=UTC)
    args = (7, "d" * 64, "alice", at, at + timedelta(hours=1))
    sig = signing.sign(key, *args, "web-a")
    assert signing.valid(key, sig, *args, "web-a")
    assert not signing.valid(key, sig, *args, "web-b")
    # The digest a person is shown names the host too.
    row = {"id": 7, "action": "notify", "params": {}, "risk": "low", "target": "notify", "incident_id": None}
    assert signing.digest({**row, "host": "web-a"}) != signing.digest({**row, "host": "web-b"})


def test_an_action_approved_for_a_runs_on_a_only_woken_by_notify(
    tmp_path: Path, roles_db: RolesDB, members: dict[str, str], approval_key: Path
) -> None:
    a, b = members["a"], members["b"]
    api_cfg = config(tmp_path, roles_db, roles_db.api, actions={"approval_key_file": str(approval_key)})
    hub_cfg = config(
        tmp_path, roles_db, roles_db.executor, actions={"approval_key_file": str(approval_key), "nix_mode": "dry-run"}
    )

    async def main() -> None:
        api = make_pool(api_cfg.database)
        await api.open(wait=True)
        ex_a, ex_b = member(tmp_path, roles_db, a, approval_key), member(tmp_path, roles_db, b, approval_key)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(ex.run(stop)) for ex in (ex_a, ex_b)]
        try:
            await asyncio.to_thread(wait_until, lambda: ex_a.listening and ex_b.listening, 30, "members listening")
            first = await _queue_notify(roles_db, a, "disk almost full on a")
            await approvals.approve(
                api, first, "alice", "ok", digest=await digest_of(api, first), key=load_key(api_cfg)
            )
            await asyncio.to_thread(wait_until, lambda: ex_a.handled == 1, 30, "A's executor picked it up")
            assert ex_a.woken >= 1  # by the host channel's NOTIFY: the poll is 600 s away
            assert ex_b.handled == 0 and ex_b.woken == 0  # B was not even woken: the payload was A
        finally:
            stop.set()
            assert await asyncio.gather(*tasks) == [0, 0]
        row = (await _rows(roles_db, "SELECT * FROM actions WHERE id = %s", first))[0]
        assert row["host"] == a and row["started_at"] is not None
        assert row["status"] in ("verified", "failed")  # `logger` ran on A; its outcome is this host's journal's
        assert row["result"]["approval"].startswith("approved by alice (signed")
        used = await _rows(roles_db, "SELECT action_id FROM ai_sysadmin_ledger.used_approvals")
        assert [u["action_id"] for u in used] == [first]  # recorded through the ledger owner's function

        # Approved for A while A's executor is down: neither B's nor the hub's own executor runs it.
        second = await _queue_notify(roles_db, a, "second notice for a")
        await approvals.approve(api, second, "alice", "ok", digest=await digest_of(api, second), key=load_key(api_cfg))
        assert await _once(member(tmp_path, roles_db, b, approval_key)) == 0
        assert await _once(Executor(hub_cfg, out=lambda line: None)) == 0
        assert (await _rows(roles_db, "SELECT status FROM actions WHERE id = %s", second))[0]["status"] == "approved"
        assert await _once(member(tmp_path, roles_db, a, approval_key)) == 1
        assert (await _rows(roles_db, "SELECT status FROM actions WHERE id = %s", second))[0]["status"] != "approved"
        await api.close()

    asyncio.run(main())


def test_an_approval_for_a_does_not_verify_on_b(
    tmp_path: Path, roles_db: RolesDB, members: dict[str, str], approval_key: Path
) -> None:
    """The orchestrator moves A's approved action to B and fixes the digest: B refuses the signature."""
    a, b = members["a"], members["b"]
    api_cfg = config(tmp_path, roles_db, roles_db.api, actions={"approval_key_file": str(approval_key)})

    async def main() -> None:
        api = make_pool(api_cfg.database)
        orch = make_pool(config(tmp_path, roles_db, roles_db.orchestrator).database)
        await api.open(wait=True)
        await orch.open(wait=True)
        try:
            aid = await _queue_notify(roles_db, a, "disk almost full on a")
            await approvals.approve(api, aid, "alice", "ok", digest=await digest_of(api, aid), key=load_key(api_cfg))
            async with orch.connection() as c:
                await c.execute("UPDATE actions SET host = %s WHERE id = %s", (b, aid))
            moved = await digest_of(orch, aid)
            async with orch.connection() as c:
                await c.execute("UPDATE action_approvals SET digest = %s WHERE action_id = %s", (moved, aid))
            assert await _once(member(tmp_path, roles_db, b, approval_key)) == 1
        finally:
            await api.close()
            await orch.close()
        row = (await _rows(roles_db, "SELECT status, started_at FROM actions WHERE id = %s", aid))[0]
        assert row["status"] == "refused" and row["started_at"] is None
        reason = (await _rows(roles_db, "SELECT reason FROM action_steps WHERE action_id = %s ORDER BY id DESC", aid))[
            0
        ]["reason"]
        assert "not valid for this action on this host" in reason

    asyncio.run(main())


def test_with_no_hub_a_members_executor_stays_idle_and_says_so_once(
    tmp_path: Path, approval_key: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = f"web-c-{uuid.uuid4().hex[:6]}"
    port = free_port()  # nothing listens there: the hub is away
    cfg = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "actions": {"approval_key_file": str(approval_key), "poll_interval": 0.2},
            "fleet": {
                "role": "member",
                "host": host,
                "hub_url": "https://hub.test:19532",
                "hub_dsn": f"host=127.0.0.1 port={port} user={fleet.member_role_name(host)} dbname=hub",
            },
        },
        env={},
    )
    seat = hub_seat(cfg)
    assert seat is not None
    tries = [0]

    async def counting() -> psycopg.AsyncConnection:
        tries[0] += 1
        return await seat.connect()

    async def main() -> None:
        ex = Executor(cfg, out=lambda line: None, seat=HubSeat(host, counting))
        stop = asyncio.Event()
        task = asyncio.create_task(ex.run(stop))
        try:
            await asyncio.to_thread(wait_until, lambda: tries[0] >= 4, 30, "several tries")
        finally:
            stop.set()
            assert await task == 0
        assert ex.handled == 0

    caplog.set_level(logging.WARNING, logger="ai_sysadmin.actions.executor")
    asyncio.run(main())
    idle = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(idle) == 1 and "the hub's database" in idle[0].getMessage() and "idle" in idle[0].getMessage()


def test_only_a_member_records_the_use_of_its_own_hosts_approval(
    tmp_path: Path, roles_db: RolesDB, members: dict[str, str]
) -> None:
    """used_approvals stays the executor's: B reaches it only through the function, for B's actions only."""
    from ai_sysadmin.store import ledger

    a, b = members["a"], members["b"]

    async def main() -> None:
        for_a = await _queue_notify(roles_db, a, "for a")
        for_b = await _queue_notify(roles_db, b, "for b")
        async with await psycopg.AsyncConnection.connect(
            roles_db.conninfo(fleet.member_role_name(b)), autocommit=True
        ) as conn:
            assert await ledger.untrusted_for_member(conn) is None
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not addressed to this member"):
                await ledger.use_member_approval(conn, "sig-a", for_a, "d")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                await conn.execute(
                    "INSERT INTO ai_sysadmin_ledger.used_approvals (signature, action_id, digest) "
                    "VALUES ('s', %s, 'd')",
                    (for_b,),
                )
            assert await ledger.use_member_approval(conn, "sig-b", for_b, "d") is True
            assert await ledger.use_member_approval(conn, "sig-b", for_b, "d") is False  # once
        # The orchestrator is not a member: refused, whatever action it names.
        orchestrator = roles_db.conninfo(roles_db.orchestrator)
        async with await psycopg.AsyncConnection.connect(orchestrator, autocommit=True) as c:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not addressed to this member"):
                await ledger.use_member_approval(c, "sig-x", for_b, "d")

    asyncio.run(main())


def test_a_member_does_not_run_without_the_hubs_ledger(
    tmp_path: Path, pg_cluster: PgCluster, approval_key: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No hub executor has created the decision ledger: a member's executor runs nothing (`--once`: exit 1)."""
    from ai_sysadmin.store.migrations import migrate

    name = f"hub_{uuid.uuid4().hex[:10]}"
    host = f"web-f-{uuid.uuid4().hex[:6]}"
    pg_cluster.create_database(name)

    async def main() -> int:
        async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(name), autocommit=True) as conn:
            await migrate(conn, host="hub-1")
            await fleet.create_member_role(conn, host)
        try:
            db = RolesDB(pg_cluster, name, "postgres", "postgres", "postgres")
            return await member(tmp_path, db, host, approval_key).run(asyncio.Event(), once=True)
        finally:
            async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(name), autocommit=True) as conn:
                await fleet.drop_member_role(conn, host)

    caplog.set_level(logging.ERROR, logger="ai_sysadmin.actions.executor")
    try:
        assert asyncio.run(main()) == 1
    finally:
        pg_cluster.drop_database(name)
    assert any("decision ledger" in r.getMessage() and "not there yet" in r.getMessage() for r in caplog.records)
