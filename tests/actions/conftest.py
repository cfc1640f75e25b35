"""Fixtures for the action tests: a database with three real, separate roles; an approval key.

The orchestrator's role owns the database (it migrates and grants, as in production);
the executor's and the API's roles get only the grants of ai_sysadmin/store/grants.py,
and the executor's role creates its decision ledger (store/ledger.py), as at its start.
All three log in over the throwaway cluster's unix socket (trust auth: the roles, not
passwords, are what these tests are about).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ai_sysadmin.actions import approvals
from ai_sysadmin.config import Config, parse_config
from ai_sysadmin.store import ledger
from ai_sysadmin.store.grants import apply_grants
from ai_sysadmin.store.migrations import migrate
from rig.postgres import PgCluster


@dataclass
class RolesDB:
    cluster: PgCluster
    name: str
    orchestrator: str
    executor: str
    api: str

    def section(self, role: str) -> dict[str, Any]:
        return {
            "socket_dir": str(self.cluster.sockdir),
            "port": self.cluster.port,
            "name": self.name,
            "user": role,
            "executor_role": self.executor,
            "api_role": self.api,
        }

    def conninfo(self, role: str) -> str:
        return f"host={self.cluster.sockdir} port={self.cluster.port} user={role} dbname={self.name}"


@pytest.fixture(scope="module")
def roles(pg_cluster: PgCluster) -> Iterator[tuple[str, str, str]]:
    s = uuid.uuid4().hex[:8]
    names = (f"orch_{s}", f"exec_{s}", f"api_{s}")
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as c:
        for r in names:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(r)))
    try:
        yield names
    finally:
        if pg_cluster.running():
            with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as c:
                for r in names:
                    c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(r)))
                    c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(r)))


def make_roles_db(cluster: PgCluster, roles: tuple[str, str, str]) -> RolesDB:
    db = RolesDB(cluster, f"act_{uuid.uuid4().hex[:10]}", *roles)
    with psycopg.connect(cluster.conninfo(), autocommit=True) as c:
        c.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db.name), sql.Identifier(db.orchestrator))
        )

    async def prepare() -> None:
        cfg = parse_config({"database": db.section(db.orchestrator)}, env={})
        async with await psycopg.AsyncConnection.connect(db.conninfo(db.orchestrator)) as conn:
            await migrate(conn)
            await apply_grants(conn, cfg.database)
        async with await psycopg.AsyncConnection.connect(db.conninfo(db.executor), autocommit=True) as conn:
            await ledger.ensure(conn)

    asyncio.run(prepare())
    return db


@pytest.fixture()
def roles_db(pg_cluster: PgCluster, roles: tuple[str, str, str]) -> Iterator[RolesDB]:
    """A fresh database owned by the orchestrator's role, migrated, with grants applied."""
    db = make_roles_db(pg_cluster, roles)
    try:
        yield db
    finally:
        if pg_cluster.running():
            pg_cluster.drop_database(db.name)


@pytest.fixture(scope="module")
def approval_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "approval.key"
    path.write_text(secrets.token_hex(32))
    path.chmod(0o600)
    return path


def config(tmp: Path, db: RolesDB, role: str, **sections: Any) -> Config:
    actions = {"cooldown_seconds": 0, "verify_window_seconds": 0, **sections.pop("actions", {})}
    return parse_config(
        {"state_dir": str(tmp / "state"), "database": db.section(role), "actions": actions, **sections}, env={}
    )


async def digest_of(pool: Any, action_id: int) -> str:
    """What a person is shown (`ai-sysadmin actions show`) and sends back to approve."""
    return (await approvals.show_action(pool, action_id))["digest"]
