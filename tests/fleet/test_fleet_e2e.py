"""A fleet end to end on real systemd (issue 22): nspawn hub and members, the hub's service and
PostgreSQL, a member executor on each member.

* the transport: real `systemd-journal-upload` on members A and B, real
  `systemd-journal-remote` in the hub container writing one file per member into a directory
  of the test host (rig/fleet.py);
* the hub: `ai-sysadmin run` with `fleet.role = "hub"` on the test host, following that
  directory and its own journal file, on the hub's real PostgreSQL (owned by the
  orchestrator's role), which listens on the fleet's bridge with TLS and lets the members in
  with `hostssl ... scram-sha-256` only (rig/fleet.py `hub_database`);
* each member: `ai-sysadmin executor` with `fleet.role = "member"` as a systemd unit in its
  container (this checkout bound in), connecting to the hub's database as its own role over
  TLS (`sslmode=verify-full`), woken by NOTIFY; no port open on the member.

No model: the review and the investigation are off, so the hub proposes the deterministic
candidates (docs/review.md) -- what is under test is where each thing lands.  The hub
container is not where the hub's service runs: here the test host plays the hub's
userspace (its journal-remote directory is bound from here), a stand-in for one NixOS hub
running both.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from ai_sysadmin.actions import approvals
from ai_sysadmin.actions.signing import load_key
from ai_sysadmin.config import parse_config
from ai_sysadmin.store import fleet as fleet_roles
from ai_sysadmin.store.db import make_pool
from rig.fleet import HUB_DB_ADDRESS, SECRETS, Fleet, fleet, hub_database
from rig.journal import JournalWriter
from rig.net import wait_until
from rig.nixos_driver import _site_packages
from rig.nspawn import Container, nspawn_root, unit_state
from rig.paths import PartMissing
from rig.require import need
from tests.actions.conftest import RolesDB, make_roles_db
from tests.hostile.conftest import Service

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MNT = "/run/aisx"  # where a member sees this checkout and its dependencies
A, B = "member-a", "member-b"
UNIT = "fleet-web.service"
# Fails at start until the admin puts its file in place: the same fault on any member.
UNIT_TEXT = "[Service]\nExecStart=/bin/sh -c 'test -e /etc/fleet-web.ok && exec sleep infinity'\n"
WINDOW = 600  # review.fleet_window's default


@dataclass
class Hub:
    f: Fleet
    db: RolesDB
    service: Service
    key: Path
    passwords: dict[str, str]

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.db.conninfo(self.db.orchestrator), row_factory=dict_row) as conn:
            return conn.execute(query, args).fetchall()

    def incidents_on(self, unit: str) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT i.id, i.host, i.status, coalesce((SELECT array_agg(h.host ORDER BY h.host) FROM incident_hosts h "
            "WHERE h.incident_id = i.id), ARRAY[i.host]) AS hosts FROM incidents i WHERE i.unit = %s ORDER BY i.id",
            unit,
        )

    def actions_of(self, incident: int) -> list[dict[str, Any]]:
        return self.rows(
            "SELECT id, action, params, host, status, started_at FROM actions WHERE incident_id = %s ORDER BY id",
            incident,
        )

    def member_dsn(self, host: str) -> str:
        role = fleet_roles.member_role_name(host)
        return (
            f"host={HUB_DB_ADDRESS} port={self.db.cluster.port} dbname={self.db.name} user={role} "
            f"sslmode=verify-full sslrootcert={SECRETS}/ca.pem"
        )


def _roles(cluster: Any) -> tuple[str, str, str]:
    s = secrets.token_hex(4)
    names = (f"orch_{s}", f"exec_{s}", f"api_{s}")
    with psycopg.connect(cluster.conninfo(), autocommit=True) as c:
        for r in names:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(r)))
    return names


def _member_roles(db: RolesDB, tmp: Path) -> dict[str, str]:
    """A's and B's roles as docs/fleet.md has the admin make them: `ai-sysadmin fleet
    add-member HOST --password-file F` on the hub, as the database's superuser."""
    passwords = {h: secrets.token_urlsafe(24) for h in (A, B)}
    admin = tmp / "admin.json"
    cfg = {"state_dir": str(tmp / "admin-state"), "database": db.cluster.database_config(db.name)}
    admin.write_text(json.dumps(cfg))
    for host, password in passwords.items():
        pw = tmp / f"{host}.password"
        pw.write_text(password + "\n")
        argv = [sys.executable, "-m", "ai_sysadmin", "--config", str(admin), "fleet", "add-member", host]
        r = subprocess.run([*argv, "--password-file", str(pw)], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stderr
        assert fleet_roles.member_role_name(host) in r.stdout and password not in r.stdout + r.stderr
    return passwords


def _hub_service(f: Fleet, db: RolesDB, key: Path, tmp: Path) -> Service:
    own = JournalWriter().write(
        tmp / "hub-own" / "system.journal",
        [{"MESSAGE": "hub booted", "SYSLOG_IDENTIFIER": "hub", "PRIORITY": "6"}],
    )
    cfg = {
        "state_dir": str(tmp / "hub-state"),
        "database": db.section(db.orchestrator),
        "autonomy_level": "auto-safe",  # what policy would run on a member still waits for a person
        "log_level": "info",
        "journal": {"source": "file", "path": str(own)},
        "roles": {"review": {"enable": False}, "meta": {"enable": False}},
        "trigger": {"model": False, "poll_interval": 0.2, "commit_interval": 0.2},
        # a review every few seconds: the test waits for its proposals, not for the default 15 minutes
        "intervals": {"review": 3},
        "review": {"debounce_seconds": 0.5, "early_min_interval": 1},
        "actions": {"approval_key_file": str(key), "cooldown_seconds": 0},
        "fleet": {
            "role": "hub",
            "host": "hub",
            "journal_dir": str(f.journal_dir),
            "members": {address: host for host, address in f.addresses.items()},
        },
    }
    return Service(cfg, tmp, "hub")


def _member_executor(c: Container, hub: Hub, host: str) -> None:
    """`ai-sysadmin executor` on a member, as the NixOS module's unit runs it (root, its config)."""
    c.write(
        "/usr/local/bin/ai-sysadmin",
        f"#!/bin/sh\nexport PYTHONPATH={MNT}/src:{MNT}/site PYTHONDONTWRITEBYTECODE=1\n"
        'exec /usr/bin/python3 -m ai_sysadmin "$@"\n',
    )
    c.write("/etc/ai-sysadmin/approval.key", hub.key.read_text())
    c.write("/etc/ai-sysadmin/hub-db-password", hub.passwords[host])
    cfg = {
        "state_dir": "/var/lib/ai-sysadmin",
        "autonomy_level": "auto-safe",
        "actions": {
            "approval_key_file": "/etc/ai-sysadmin/approval.key",
            "poll_interval": 600,  # a wake-up within seconds is NOTIFY's
            "cooldown_seconds": 0,
            "verify_window_seconds": 5,
            "nix_mode": "dry-run",
        },
        "fleet": {
            "role": "member",
            "host": host,
            "hub_url": hub.f.url,
            "hub_dsn": hub.member_dsn(host),
            "hub_password_file": "/etc/ai-sysadmin/hub-db-password",
        },
    }
    c.write("/etc/ai-sysadmin/executor.json", json.dumps(cfg))
    assert c.sh("chmod 755 /usr/local/bin/ai-sysadmin && chmod 600 /etc/ai-sysadmin/*").returncode == 0
    c.write(f"/etc/systemd/system/{UNIT}", UNIT_TEXT)
    assert c.run(["systemctl", "daemon-reload"]).returncode == 0
    r = c.run(
        [
            "systemd-run",
            "--unit=ai-sysadmin-executor",
            "--property=Environment=PYTHONUNBUFFERED=1",
            "/usr/local/bin/ai-sysadmin",
            "--config",
            "/etc/ai-sysadmin/executor.json",
            "executor",
        ]
    )
    assert r.returncode == 0, r.stderr


def _listening(hub: Hub, host: str) -> bool:
    """The member's executor waits on its host's channel: its LISTEN is on the hub's server
    (pg_stat_activity's query column, which only a superuser sees for other roles)."""
    with psycopg.connect(hub.db.cluster.conninfo(hub.db.name)) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_stat_activity WHERE usename = %s AND query LIKE 'LISTEN%%' AND state = 'idle'",
            (fleet_roles.member_role_name(host),),
        ).fetchone()
    return row is not None


def _executor_log(c: Container) -> str:
    return c.run(["journalctl", "-u", "ai-sysadmin-executor", "-o", "cat", "--no-pager"]).stdout


def _executor_dead(c: Container) -> str | None:
    if unit_state(c, "ai-sysadmin-executor.service") == "active":
        return None
    return _executor_log(c)[-3000:]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    try:
        root = nspawn_root()
        site = str(_site_packages())
    except PartMissing as exc:
        need(str(exc))
    tmp = tmp_path_factory.mktemp("fleet-e2e")
    binds = [(str(REPO), f"{MNT}/src"), (site, f"{MNT}/site")]
    with fleet(root, tmp, member_binds_ro=binds) as f, hub_database(f) as cluster:
        db = make_roles_db(cluster, _roles(cluster))
        passwords = _member_roles(db, tmp)
        key = tmp / "approval.key"
        key.write_text(secrets.token_hex(32))
        key.chmod(0o600)
        svc = _hub_service(f, db, key, tmp).start()
        h = Hub(f, db, svc, key, passwords)
        try:
            for host, c in f.members.items():
                _member_executor(c, h, host)
            for host, c in f.members.items():
                try:
                    wait_until(lambda host=host: _listening(h, host), 120, f"{host}'s executor listening on the hub",
                               alive=lambda c=c: _executor_dead(c))  # fmt: skip
                except TimeoutError as exc:
                    raise AssertionError(f"{exc}; its log:\n{_executor_log(c)[-3000:]}") from None
            yield h
        finally:
            svc.ensure_stopped()
            for c in f.members.values():
                c.run(["systemctl", "stop", "ai-sysadmin-executor.service"])


def _fail(c: Container) -> None:
    c.run(["systemctl", "start", UNIT])
    wait_until(lambda: unit_state(c, UNIT) == "failed", 60, f"{UNIT} failed")


def test_a_fault_on_a_then_b_and_an_approval_for_a_runs_on_a_only(hub: Hub) -> None:
    a, b = hub.f.members[A], hub.f.members[B]
    alive = hub.service.dead

    # A fault on member A: an incident of A only.
    _fail(a)
    wait_until(lambda: hub.incidents_on(UNIT), 180, "A's incident on the hub", alive=alive)
    (inc,) = hub.incidents_on(UNIT)
    assert (inc["host"], inc["hosts"]) == (A, [A])
    wait_until(lambda: hub.actions_of(inc["id"]), 120, "A's proposal", alive=alive)
    first = hub.actions_of(inc["id"])
    assert {r["host"] for r in first} == {A}
    restart_a = next(r for r in first if r["action"] == "restart_unit")
    assert restart_a["params"] == {"unit": UNIT}
    # auto-safe would run a restart here; for a member it waits for a person
    assert restart_a["status"] == "queued", first

    # The same fault on B within the window: the same incident, now a fleet incident of both.
    _fail(b)
    wait_until(lambda: hub.incidents_on(UNIT)[0]["hosts"] == [A, B], 180, "B joins the incident", alive=alive)
    (fleet_inc,) = hub.incidents_on(UNIT)
    assert fleet_inc["id"] == inc["id"] and fleet_inc["host"] == A
    wait_until(
        lambda: any(r["host"] == B and r["action"] == "restart_unit" for r in hub.actions_of(inc["id"])),
        120,
        "B's own restart proposal",
        alive=alive,
    )
    restart_b = next(r for r in hub.actions_of(inc["id"]) if r["host"] == B and r["action"] == "restart_unit")

    # The admin puts the missing file in place on both, then approves A's restart only.
    for c in (a, b):
        c.write("/etc/fleet-web.ok", "")

    async def approve() -> None:
        cfg = parse_config(
            {"database": hub.db.section(hub.db.api), "actions": {"approval_key_file": str(hub.key)}}, env={}
        )
        pool = make_pool(cfg.database)
        await pool.open(wait=True)
        try:
            digest = (await approvals.show_action(pool, restart_a["id"]))["digest"]
            await approvals.approve(pool, restart_a["id"], "alice", "fixed on A", digest=digest, key=load_key(cfg))
        finally:
            await pool.close()

    asyncio.run(approve())
    done = ("verified", "failed", "succeeded")
    wait_until(
        lambda: hub.rows("SELECT status FROM actions WHERE id = %s", restart_a["id"])[0]["status"] in done,
        120,
        "A's executor ran it",
        alive=alive,
    )
    (row,) = hub.rows("SELECT status, host, result FROM actions WHERE id = %s", restart_a["id"])
    assert (row["status"], row["host"]) == ("verified", A), row
    assert unit_state(a, UNIT) == "active"  # restarted on A, by A's executor
    assert f"action {restart_a['id']} " in _executor_log(a)
    # B: its unit still failed, its action still waiting, its executor never touched A's
    assert unit_state(b, UNIT) == "failed"
    (b_row,) = hub.rows("SELECT status, started_at FROM actions WHERE id = %s", restart_b["id"])
    assert (b_row["status"], b_row["started_at"]) == ("queued", None)
    assert f"action {restart_a['id']} " not in _executor_log(b)
    steps = hub.rows("SELECT actor, to_status FROM action_steps WHERE action_id = %s ORDER BY id", restart_a["id"])
    assert ("ai-sysadmin-executor", "executing") in [(s["actor"], s["to_status"]) for s in steps], steps
    assert steps[-1]["to_status"] == "verified", steps


_WRITE_AS_B = """
import json, sys
import psycopg
dsn, password, other, me = sys.argv[1:5]
out = {}
with psycopg.connect(dsn, password=password, autocommit=True) as conn:
    out["ssl"] = conn.pgconn.ssl_in_use
    try:
        conn.execute("SELECT ai_sysadmin_member_metrics(ARRAY[now()], ARRAY['e2e.probe'], ARRAY[''], ARRAY[1::float8])")
        out[me] = "written"
    except psycopg.Error as exc:
        out[me] = exc.diag.message_primary or type(exc).__name__
    for what, stmt, args in (
        ("insert", "INSERT INTO metrics (ts, name, value, host) VALUES (now(), 'e2e.probe', 1, %s)", (other,)),
        ("select", "SELECT count(*) FROM metrics", None),
    ):
        try:
            conn.execute(stmt, args)
            out[what] = "allowed"
        except psycopg.Error as exc:
            out[what] = exc.diag.message_primary or type(exc).__name__
    out["actions_of_other"] = conn.execute("SELECT count(*) FROM actions WHERE host = %s", (other,)).fetchone()[0]
    try:
        cur = conn.execute("UPDATE actions SET status = 'failed' WHERE host = %s", (other,))
        out["update_other"] = cur.rowcount
    except psycopg.Error as exc:
        out["update_other"] = exc.diag.message_primary or type(exc).__name__
print(json.dumps(out))
"""


def test_as_b_s_role_over_tls_writing_a_s_rows_fails(hub: Hub) -> None:
    """From member B, as B's own login role, over TLS: B's row is written through the hub's
    function (which sets the host itself), the table itself is out of reach (no INSERT of
    A's row, no SELECT), and A's actions are invisible to it and cannot be changed by it."""
    b = hub.f.members[B]
    (queued,) = hub.rows(
        "INSERT INTO actions (action, params, risk, status, target, host, source) "
        "VALUES ('notify', '{\"message\": \"for A\"}', 'low', 'queued', 'notify', %s, 'cli') RETURNING id",
        A,
    )
    b.write("/tmp/as-b.py", _WRITE_AS_B)
    argv = ["env", f"PYTHONPATH={MNT}/site", "python3", "/tmp/as-b.py", hub.member_dsn(B), hub.passwords[B], A, B]
    r = b.run(argv, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ssl"] is True
    assert out[B] == "written"
    assert "permission denied" in out["insert"] and "permission denied" in out["select"], out
    assert out["actions_of_other"] == 0
    assert out["update_other"] in (0, "permission denied for table actions"), out  # A's action: untouched
    assert hub.rows("SELECT status FROM actions WHERE id = %s", queued["id"]) == [{"status": "queued"}]
    probes = hub.rows("SELECT host FROM metrics WHERE name = 'e2e.probe'")
    assert [p["host"] for p in probes] == [B]
