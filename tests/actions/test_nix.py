"""Real Nix (Debian's nix-bin) on a local store in a temp dir: the three Nix actions, verified.

The store, state and profiles live under a temp dir (NIX_STORE_DIR / NIX_STATE_DIR),
so store paths are real paths there.  The "system" generations are real derivations
built into that store whose `bin/switch-to-configuration` is a RECORDING STAND-IN (it
logs its arguments and points the test's current-system link at its generation, the
part of NixOS's switch that verification observes).  This host has no systemd as
PID 1, so the executor runs the switch step directly, not via systemd-run (named so in
the step's output); the detached path is exercised on NixOS only.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from ai_sysadmin.actions import approvals
from ai_sysadmin.actions.executor import Executor
from ai_sysadmin.actions.preconditions import used_percent
from ai_sysadmin.actions.proposals import ActionService
from ai_sysadmin.actions.signing import load_key
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.store.db import make_pool
from rig.require import need
from tests.actions.conftest import RolesDB, config, digest_of, make_roles_db

SWITCH = """#!/bin/sh
# RECORDING STAND-IN for NixOS's switch-to-configuration (test only).
export PATH=/bin:/usr/bin
out=$(cd "$(dirname "$0")/.." && pwd)
echo "$out $*" >> "@RECORD@"
ln -sfn "$out" "@CURRENT@"
"""
DRV = """{ n }: derivation {
  name = "nixos-system-gen${n}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "export PATH=/bin:/usr/bin; mkdir -p $out/bin; cp ${./switch.sh} $out/bin/switch-to-configuration; chmod 555 $out/bin/switch-to-configuration; echo ${n} > $out/generation" ];
}
"""


class NixRig:
    def __init__(self, base: Path):
        self.base = base
        self.env = {
            "NIX_STORE_DIR": str(base / "store"),
            "NIX_STATE_DIR": str(base / "var"),
            "NIX_LOG_DIR": str(base / "var/log"),
            "NIX_CONF_DIR": str(base / "etc"),
        }
        self.profile = base / "var/profiles/system"
        self.current = base / "current-system"
        self.record = base / "switch.log"

    def run(self, *argv: str) -> str:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **self.env})
        assert r.returncode == 0, f"{argv}: {r.stderr}"
        return r.stdout.strip()

    def build(self, n: int) -> str:
        return self.run("nix-build", str(self.base / "system.nix"), "--argstr", "n", str(n), "--no-out-link")


@pytest.fixture(scope="module")
def nixrig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NixRig]:
    if shutil.which("nix-build") is None:
        need("nix-bin not installed (run scripts/provision-nix.sh)")
    rig = NixRig(tmp_path_factory.mktemp("nix"))
    (rig.base / "etc").mkdir()
    (rig.base / "etc/nix.conf").write_text("build-users-group =\nsandbox = false\nsubstituters =\n")
    (rig.base / "switch.sh").write_text(
        SWITCH.replace("@RECORD@", str(rig.record)).replace("@CURRENT@", str(rig.current))
    )
    (rig.base / "system.nix").write_text(DRV)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in rig.env.items():
            mp.setenv(k, v)  # the executor hands these to nix (runner.PASS_ENV)
        rig.gens = [rig.build(n) for n in (1, 2)]
        for g in rig.gens:
            rig.run("nix-env", "-p", str(rig.profile), "--set", g)
        os.symlink(rig.gens[-1], rig.current)
        yield rig


@pytest.fixture(scope="module")
def db(pg_cluster, roles) -> Iterator[RolesDB]:
    d = make_roles_db(pg_cluster, roles)
    yield d
    if pg_cluster.running():
        pg_cluster.drop_database(d.name)


def _cfgs(tmp: Path, db: RolesDB, rig: NixRig, key: Path, disk_percent: float = 90.0) -> tuple[Any, Any]:
    nix = {
        "nix_mode": "run",
        "system_profile": str(rig.profile),
        "current_system": str(rig.current),
        "approval_key_file": str(key),
    }
    return (
        config(tmp, db, db.orchestrator, autonomy_level="auto-full", actions=nix),
        config(
            tmp, db, db.executor, autonomy_level="auto-full", actions=nix, thresholds={"disk_percent": disk_percent}
        ),
    )


async def _run(
    tmp: Path, db: RolesDB, rig: NixRig, key: Path, proposal: Proposal, approve: bool, disk_percent: float = 90.0
) -> dict[str, Any]:
    orch, exe = _cfgs(tmp, db, rig, key, disk_percent)
    pool = make_pool(orch.database)
    await pool.open(wait=True)
    try:
        out = await ActionService(orch, pool).propose(proposal)
        assert out.decision == ("queue" if approve else "execute"), out
        if approve:
            await approvals.approve(
                pool, out.action_id, "alice", "test", digest=await digest_of(pool, out.action_id), key=load_key(orch)
            )
        ex = Executor(exe, out=lambda line: None)
        conn = await ex.connect()
        try:
            await ex.process_pending(conn)
        finally:
            await conn.close()
        async with pool.connection() as c:
            cur = c.cursor(row_factory=dict_row)
            await cur.execute("SELECT * FROM actions WHERE id = %s", (out.action_id,))
            return await cur.fetchone()  # type: ignore[return-value]
    finally:
        await pool.close()


def _refusal(db: RolesDB, action_id: int) -> str:
    with psycopg.connect(db.conninfo(db.orchestrator)) as c:
        step = c.execute(
            "SELECT reason FROM action_steps WHERE action_id = %s AND to_status = 'refused'", (action_id,)
        ).fetchone()
        audit = c.execute(
            "SELECT actor FROM audit_log WHERE subject = %s AND event = 'action.refused'", (f"action:{action_id}",)
        ).fetchone()
    assert step is not None and audit == ("ai-sysadmin-executor",)
    return str(step[0])


def test_a_rollback_runs_only_from_the_generation_it_was_bound_to(
    tmp_path: Path, db: RolesDB, nixrig: NixRig, approval_key: Path
) -> None:
    gen1, gen2 = nixrig.gens
    # approved for a generation the profile is not at
    row = asyncio.run(
        _run(
            tmp_path,
            db,
            nixrig,
            approval_key,
            Proposal("rollback_generation", {"from_generation": 7}, "bad upgrade", "meta"),
            approve=True,
        )
    )
    assert row["status"] == "refused" and row["started_at"] is None
    assert "is at generation 2, not 7" in _refusal(db, row["id"])
    # the profile is at 2, but the running system is still 1 (a `nixos-rebuild boot`): not the bound system
    os.unlink(nixrig.current)
    os.symlink(gen1, nixrig.current)
    try:
        row = asyncio.run(
            _run(
                tmp_path,
                db,
                nixrig,
                approval_key,
                Proposal("rollback_generation", {}, "bad upgrade", "meta"),
                approve=True,
            )
        )
    finally:
        os.unlink(nixrig.current)
        os.symlink(gen2, nixrig.current)
    assert row["params"] == {"from_generation": 2}  # bound by the proposer to the profile's generation
    assert row["status"] == "refused" and "is not generation 2" in _refusal(db, row["id"])
    assert os.path.realpath(nixrig.profile) == gen2 and not nixrig.record.exists()


def test_rollback_generation_against_a_real_profile(
    tmp_path: Path, db: RolesDB, nixrig: NixRig, approval_key: Path
) -> None:
    row = asyncio.run(
        _run(
            tmp_path, db, nixrig, approval_key, Proposal("rollback_generation", {}, "bad upgrade", "meta"), approve=True
        )
    )
    assert row["status"] == "verified", row["verification"]
    assert row["params"] == {"from_generation": 2}
    gen1, gen2 = nixrig.gens
    assert os.path.realpath(nixrig.profile) == gen1 and os.path.realpath(nixrig.current) == gen1
    assert nixrig.record.read_text().split() == [gen1, "switch"]
    steps = row["result"]["steps"]
    assert steps[0]["argv"] == ["nix-env", "--rollback", "-p", str(nixrig.profile)]
    assert steps[1]["argv"] == [f"{gen1}/bin/switch-to-configuration", "switch"]  # the store path, not the link
    assert "ran directly: no systemd" in steps[1]["stderr"]
    assert row["result"]["before"]["target"] == gen2


def test_collect_garbage_deletes_unreachable_paths_only(
    tmp_path: Path, db: RolesDB, nixrig: NixRig, approval_key: Path
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "big").write_bytes(os.urandom(1 << 20))
    with pytest.MonkeyPatch.context() as mp:
        for k, v in nixrig.env.items():
            mp.setenv(k, v)
        garbage = nixrig.run("nix-store", "--add", str(junk))
        assert Path(garbage).exists()
        # the store's file system has room under the default threshold: refused, nothing collected
        row = asyncio.run(
            _run(
                tmp_path,
                db,
                nixrig,
                approval_key,
                Proposal("collect_garbage", {"older_than_days": 30}, "disk", "review"),
                approve=False,
                disk_percent=100.0,
            )
        )
        assert row["status"] == "refused" and Path(garbage).exists()
        assert "below thresholds.disk_percent 100%" in _refusal(db, row["id"])
        # an executor whose threshold this file system is above: it runs
        full = used_percent(str(nixrig.base)) / 2
        row = asyncio.run(
            _run(
                tmp_path,
                db,
                nixrig,
                approval_key,
                Proposal("collect_garbage", {"older_than_days": 30}, "disk", "review"),
                approve=False,
                disk_percent=full,
            )
        )
    assert row["status"] == "verified", row["verification"]
    assert row["result"]["steps"][0]["argv"] == ["nix-collect-garbage", "--delete-older-than", "30d"]
    assert not Path(garbage).exists()
    assert all(Path(g).exists() for g in nixrig.gens)  # generations are GC roots: kept
    observed = row["verification"]["checks"][1]["observed"]
    assert observed["after"] >= observed["before"] - observed["before"] // 100


def _corrupt(path: str) -> None:
    target = Path(path) / "generation"
    Path(path).chmod(0o755)
    target.chmod(0o644)
    target.write_text("corrupted\n")


def test_nix_store_repair_restores_a_corrupted_path(
    tmp_path: Path, db: RolesDB, nixrig: NixRig, approval_key: Path
) -> None:
    gen2 = nixrig.gens[1]
    _corrupt(gen2)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in nixrig.env.items():
            mp.setenv(k, v)
        row = asyncio.run(
            _run(
                tmp_path,
                db,
                nixrig,
                approval_key,
                Proposal("nix_store_repair", {}, "hash mismatch", "meta"),
                approve=True,
            )
        )
    assert row["status"] == "verified", row["verification"]
    assert (Path(gen2) / "generation").read_text() == "2\n"  # rebuilt from its derivation
    assert row["result"]["steps"][0]["argv"] == ["nix-store", "--verify", "--check-contents", "--repair"]


def test_a_repair_that_cannot_work_fails_verification_trips_the_breaker_and_reopens(
    tmp_path: Path, db: RolesDB, nixrig: NixRig, approval_key: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("original\n")
    with pytest.MonkeyPatch.context() as mp:
        for k, v in nixrig.env.items():
            mp.setenv(k, v)
        added = nixrig.run("nix-store", "--add", str(src))  # no derivation: nothing to rebuild it from
        nixrig.run("nix-store", "--add-root", str(tmp_path / "root"), "--indirect", "-r", added)
        Path(added).chmod(0o755)
        (Path(added) / "f").chmod(0o644)
        (Path(added) / "f").write_text("corrupted\n")
        with psycopg.connect(db.conninfo(db.orchestrator)) as c:
            incident = c.execute(
                "INSERT INTO incidents (title, severity, category, status) VALUES "
                "('store corruption', 'high', 'nix', 'resolved') RETURNING id"
            ).fetchone()[0]
        row = asyncio.run(
            _run(
                tmp_path,
                db,
                nixrig,
                approval_key,
                Proposal("nix_store_repair", {}, "hash mismatch", "meta", incident_id=incident),
                approve=True,
            )
        )
    assert row["status"] == "failed"
    assert not row["verification"]["passed"]
    with psycopg.connect(db.conninfo(db.orchestrator)) as c:
        assert c.execute("SELECT status FROM incidents WHERE id = %s", (incident,)).fetchone()[0] == "open"
        breaker = c.execute("SELECT target, action_id FROM action_breakers WHERE cleared_at IS NULL").fetchone()
    assert breaker == ("nix-store", row["id"])

    async def after() -> None:
        orch, _ = _cfgs(tmp_path, db, nixrig, approval_key)
        pool = make_pool(orch.database)
        await pool.open(wait=True)
        try:
            out = await ActionService(orch, pool).propose(
                Proposal("collect_garbage", {"older_than_days": 9}, "x", "review")
            )
            assert out.decision == "queue" and "breaker open on nix-store" in out.reason
            await approvals.clear_breaker(pool, "nix-store", "alice", "store checked by hand", key=load_key(orch))
            again = await ActionService(orch, pool).propose(
                Proposal("collect_garbage", {"older_than_days": 8}, "x", "review")
            )
            # the breaker no longer blocks; three Nix store actions this hour reach the per-target limit
            assert again.decision == "queue" and "breaker" not in again.reason and "rate limit" in again.reason
            await approvals.reject(pool, again.action_id, "alice", "not now")
        finally:
            await pool.close()

    asyncio.run(after())
