"""`ai-sysadmin fleet members|add-member|remove-member` on the real PostgreSQL.

The password is set as a SCRAM-SHA-256 verifier computed on the client: PostgreSQL itself
proves it right (a cluster whose pg_hba.conf asks the member for scram-sha-256 lets it in
with the password and refuses a wrong one), the server's log never sees the clear text,
and `scram_verifies` below (RFC 5802/7677, checked against PostgreSQL's own verifier of a
known password) recomputes the stored keys from the verifier's salt and iterations.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from ai_sysadmin.store import fleet
from ai_sysadmin.store.migrations import MEMBER_ROLE_PREFIX, migrate
from rig.postgres import PgCluster

HUB = "hub-1"
# Quotes, a backslash and spaces: the verifier, not this, travels as a SQL literal.
PASSWORD = "correct horse 'battery' \\ staple"


def scram_verifier_for(password: str, salt: bytes, iterations: int) -> str:
    """The verifier PostgreSQL stores for `password` (RFC 5802 section 3 with SHA-256, RFC 7677):
    `SCRAM-SHA-256$<i>:<salt>$<StoredKey>:<ServerKey>`.  ASCII passwords only (no SASLprep)."""
    _, stored_key, server_key = _keys(password, salt, iterations)
    b64 = base64.b64encode
    return f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}${b64(stored_key).decode()}:{b64(server_key).decode()}"


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes, bytes]:
    """ClientKey, StoredKey, ServerKey."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return client_key, hashlib.sha256(client_key).digest(), hmac.new(salted, b"Server Key", "sha256").digest()


def _parts(verifier: str) -> tuple[int, bytes]:
    iterations, salt = verifier.split("$")[1].split(":")
    return int(iterations), base64.b64decode(salt)


def scram_verifies(verifier: str, password: str) -> bool:
    """Whether `verifier` is `password`'s: its keys recomputed from its own salt and iterations."""
    iterations, salt = _parts(verifier)
    return scram_verifier_for(password, salt, iterations) == verifier


def _conninfo(cluster: PgCluster, db: str, role: str) -> str:
    return f"host={cluster.sockdir} port={cluster.port} user={role} dbname={db}"


async def cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db: dict[str, Any], *argv: str
) -> tuple[int, str, str]:
    """ai_sysadmin.cli.main as the console script calls it (in a thread: it runs its own event
    loop); (exit status, stdout, stderr)."""
    from ai_sysadmin.cli import main

    (tmp_path / "c.json").write_text(
        json.dumps({"state_dir": str(tmp_path / "state"), "log_level": "warning", "database": db})
    )
    try:
        rc = await asyncio.to_thread(main, [*argv, "--config", str(tmp_path / "c.json")])
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def database(pg_cluster: PgCluster) -> Iterator[str]:
    name = f"fleetcli_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    try:
        yield name
    finally:
        if pg_cluster.running():
            pg_cluster.drop_database(name)


@pytest.fixture()
async def owner(pg_cluster: PgCluster, database: str) -> AsyncIterator[psycopg.AsyncConnection]:
    """The superuser's connection to the migrated database (it owns the tables here)."""
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(database), autocommit=True) as conn:
        await migrate(conn, host=HUB)
        yield conn


@pytest.fixture()
async def roles(owner: psycopg.AsyncConnection) -> AsyncIterator[list[str]]:
    """Names of roles a test creates (cluster-wide): dropped afterwards, member roles included."""
    made: list[str] = []
    yield made
    for role in made:
        if role.startswith(MEMBER_ROLE_PREFIX):
            await fleet.drop_member_role(owner, role[len(MEMBER_ROLE_PREFIX) :])
        else:
            await owner.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# ------------------------------------------------------------------ the verifier


def test_checker_reproduces_rfc_7677s_exchange() -> None:
    # RFC 7677 section 3: user "user", password "pencil"; its keys yield the exchange's
    # ClientProof (p=) and ServerSignature (v=).
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r={nonce}".encode()
    client_key, stored_key, server_key = _keys("pencil", salt, 4096)
    signature = hmac.new(stored_key, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof) == b"dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    assert base64.b64encode(hmac.new(server_key, auth, "sha256").digest()) == (
        b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    )
    assert scram_verifier_for("pencil", salt, 4096) == (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    )


async def test_verifier_matches_postgresqls_own(pg_cluster: PgCluster, roles: list[str]) -> None:
    role = _unique("scram_ref")
    roles.append(role)
    async with await psycopg.AsyncConnection.connect(pg_cluster.conninfo(), autocommit=True) as conn:
        # The reference: PostgreSQL hashing a known password itself (the clear text sent on purpose).
        await conn.execute("SET password_encryption = 'scram-sha-256'")
        await conn.execute(sql.SQL("CREATE ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(PASSWORD)))
        cur = await conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        reference = (await cur.fetchone())[0]  # type: ignore[index]
        ours = fleet.scram_verifier(conn, role, PASSWORD)
        again = fleet.scram_verifier(conn, role, PASSWORD)
    # The checker, given PostgreSQL's salt and iterations, computes exactly its verifier ...
    iterations, salt = _parts(reference)
    assert (iterations, len(salt)) == (4096, 16)
    assert scram_verifier_for(PASSWORD, salt, iterations) == reference
    assert scram_verifies(reference, PASSWORD) and not scram_verifies(reference, PASSWORD + "x")
    # ... and ours is one of the same kind: 4096 iterations, a fresh 16-byte salt, the same keys' derivation.
    iterations, salt = _parts(ours)
    assert (iterations, len(salt)) == (4096, 16) and salt != _parts(reference)[1]
    assert scram_verifies(ours, PASSWORD) and not scram_verifies(ours, PASSWORD.upper())
    assert again != ours and scram_verifies(again, PASSWORD)  # a new salt each time


# ------------------------------------------------------------------ the password, proven by PostgreSQL


async def test_add_member_password_logs_in_with_scram_and_never_in_clear(
    private_pg_cluster: PgCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = private_pg_cluster
    cluster.create_database("hubdb")
    async with await psycopg.AsyncConnection.connect(cluster.conninfo("hubdb"), autocommit=True) as conn:
        await migrate(conn, host=HUB)
        await conn.execute("ALTER SYSTEM SET log_statement = 'all'")
    host = "web-1"
    role = fleet.member_role_name(host)
    # The member must prove its password (before initdb's trust lines: the first match wins).
    hba = cluster.datadir / "pg_hba.conf"
    hba.write_text(f"local all {role} scram-sha-256\n" + hba.read_text())
    cluster.stop()
    cluster.start()  # a restart, not a reload: the new rules are surely in force once it answers
    (tmp_path / "pw").write_text(PASSWORD + "\n")  # the newline is dropped, as the member drops it

    rc, out, err = await cli(
        tmp_path,
        capsys,
        cluster.database_config("hubdb"),
        "fleet",
        "add-member",
        host,
        "--password-file",
        str(tmp_path / "pw"),
    )
    assert rc == 0, err
    assert f"member role {role} created" in out
    assert "password set, as a SCRAM-SHA-256 verifier computed here" in out
    assert f'member.database.url = "postgresql://{role}@HUB/hubdb?sslmode=verify-full' in out
    assert f"hostssl hubdb {role} MEMBER-ADDRESS/32 scram-sha-256" in out

    member = _conninfo(cluster, "hubdb", role)
    async with await psycopg.AsyncConnection.connect(member, password=PASSWORD) as conn:
        cur = await conn.execute("SELECT current_user, count(*) FROM actions")
        assert await cur.fetchone() == (role, 0)  # its grants work too
    for wrong in ({"password": PASSWORD + " "}, {"password": "postgres"}, {}):
        with pytest.raises(psycopg.OperationalError, match="password"):
            await psycopg.AsyncConnection.connect(member, **wrong)

    async with await psycopg.AsyncConnection.connect(cluster.conninfo("hubdb"), autocommit=True) as conn:
        cur = await conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
        stored = (await cur.fetchone())[0]  # type: ignore[index]
    assert scram_verifies(stored, PASSWORD)
    log = cluster.logfile.read_text()
    assert f'ALTER ROLE "{role}" PASSWORD \'SCRAM-SHA-256$4096:' in log  # statements are logged ...
    assert "battery" not in log  # ... and the password is not among them


# ------------------------------------------------------------------ the commands


async def test_members_add_remove_text_and_json(
    pg_cluster: PgCluster,
    database: str,
    owner: psycopg.AsyncConnection,
    roles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = pg_cluster.database_config(database)
    host = _unique("web")
    role = fleet.member_role_name(host)
    roles.append(role)

    async def listed() -> dict[str, Any] | None:
        rc, out, err = await cli(tmp_path, capsys, db, "fleet", "members", "--format", "json")
        assert rc == 0, err
        return next((m for m in json.loads(out) if m["host"] == host), None)

    assert await listed() is None
    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "add-member", host)
    assert rc == 0, err
    assert f"member role {role} created" in out and "password: still to be set" in out
    assert await listed() == {"host": host, "role": role, "can_login": True, "password": "none"}
    rc, out, _ = await cli(tmp_path, capsys, db, "fleet", "members")
    assert rc == 0 and "HOST" in out and "PASSWORD" in out
    assert any(line.split() == [host, role, "yes", "none"] for line in out.splitlines()), out

    # Again, with the password on stdin: the role is kept, its grants renewed, the password set.
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "add-member", host, "--password-stdin")
    assert rc == 0, err
    assert f"member role {role} exists; its grants are renewed" in out and "password set" in out
    assert await listed() == {"host": host, "role": role, "can_login": True, "password": "scram-sha-256"}
    cur = await owner.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
    assert scram_verifies((await cur.fetchone())[0], PASSWORD)  # type: ignore[index]

    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "remove-member", host)
    assert rc == 0 and f"member role {role} dropped" in out, err
    assert await listed() is None
    rc, out, _ = await cli(tmp_path, capsys, db, "fleet", "remove-member", host)
    assert rc == 0 and f"no member role {role}: nothing dropped" in out


async def test_errors_are_one_line(
    pg_cluster: PgCluster,
    database: str,
    owner: psycopg.AsyncConnection,
    roles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = pg_cluster.database_config(database)
    host = _unique("web")
    role = fleet.member_role_name(host)
    roles.append(role)

    async def error(*argv: str) -> str:
        rc, out, err = await cli(tmp_path, capsys, db, *argv)
        lines = err.strip().splitlines()
        assert rc == 1 and len(lines) == 1 and not out, (rc, out, err)
        return lines[0]

    async def exists() -> bool:
        return host in await fleet.member_roles(owner)

    assert "not a member host id: 'web 1'" in await error("fleet", "add-member", "web 1")
    assert "at most 44 characters" in await error("fleet", "remove-member", "x" * 45)
    (tmp_path / "empty").write_text("\n")
    assert "the password is empty" in await error(
        "fleet", "add-member", host, "--password-file", str(tmp_path / "empty")
    )
    assert "cannot read" in await error("fleet", "add-member", host, "--password-file", str(tmp_path / "nothing"))
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    assert "not UTF-8 text" in await error("fleet", "add-member", host, "--password-file", str(tmp_path / "binary"))
    assert not await exists()

    # An admin role without CREATEROLE, and one with it that owns nothing (not a superuser).
    plain, creator = _unique("plain"), _unique("creator")
    roles.extend([plain, creator])
    await owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(plain)))
    await owner.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE").format(sql.Identifier(creator)))
    as_plain = ["--dsn", _conninfo(pg_cluster, database, plain)]
    as_creator = ["--dsn", _conninfo(pg_cluster, database, creator)]
    assert "needs CREATEROLE" in await error("fleet", "add-member", host, *as_plain)
    line = await error("fleet", "add-member", host, *as_creator)
    assert f"cannot grant role '{role}' its privileges" in line and "superuser" in line
    assert not await exists()  # refused in the same transaction: no role left behind
    await fleet.create_member_role(owner, host)
    assert "cannot drop role" in await error("fleet", "remove-member", host, *as_plain)
    assert await exists()
    # Who may not read pg_authid cannot tell whether a password is set, and says so.
    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "members", *as_creator)
    assert rc == 0, err
    assert any(line.split() == [host, role, "yes", "unknown"] for line in out.splitlines()), out
    assert "only a superuser may read pg_authid" in out

    # The TimescaleDB backend is no refusal since migration 12 (members hold nothing on the
    # hypertable; not installable here: only its recorded setting is set).
    await owner.execute("UPDATE store_settings SET value = 'timescaledb' WHERE key = 'metrics_backend'")
    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "add-member", host)
    assert rc == 0 and role in out, err
    await owner.execute("UPDATE store_settings SET value = 'partitions' WHERE key = 'metrics_backend'")

    # A database the service never migrated.
    fresh = _unique("fresh").replace("-", "_")
    pg_cluster.create_database(fresh)
    try:
        line = await error("fleet", "add-member", host, "--dsn", pg_cluster.conninfo(fresh))
        assert "not migrated" in line and "start the service once" in line
    finally:
        pg_cluster.drop_database(fresh)

    # PostgreSQL not there.
    gone = f"host={tmp_path / 'nosock'} port=5432 dbname=x"
    assert "cannot reach PostgreSQL" in await error("fleet", "members", "--dsn", gone)

    # A password in --dsn is a usage error that does not repeat it.
    rc, out, err = await cli(
        tmp_path, capsys, db, "fleet", "members", "--dsn", f"{pg_cluster.conninfo()} password=s3cret"
    )
    assert rc == 2 and "must not contain a password" in err and "s3cret" not in err
    rc, out, err = await cli(tmp_path, capsys, db, "fleet", "members", "--dsn", "postgresql://postgres:s3cret@db/x")
    assert rc == 2 and "s3cret" not in err
