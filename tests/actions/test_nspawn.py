"""Real systemd: the executor (root) in a booted container, proposals from a non-root user.

One `systemd-nspawn --boot` container for the module.  This checkout and the test
venv's site-packages are bind-mounted read-only and run with the container's
python3; the throwaway PostgreSQL cluster's unix socket is bind-mounted at the same
path.  The executor runs as a transient unit (`systemd-run`, root, its own config with
the executor's database role and the approval key).  Proposals come from
`ai-sysadmin actions propose` run as `nobody` with the orchestrator's database role,
which can neither restart a unit itself nor read the approval key.
"""

from __future__ import annotations

import json
import os
import secrets
import site
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from rig.net import wait_until
from rig.nspawn import Container, nspawn_root
from rig.paths import PartMissing
from rig.require import need
from tests.actions.conftest import RolesDB, make_roles_db

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
MNT = "/run/aisx"
FINAL = ("verified", "failed", "refused", "expired", "interrupted", "dry-run", "rejected")

UNITS = {
    # Fails on its first start (the "problem"), runs on the next: a restart fixes it.
    "flaky.service": "[Service]\nExecStart=/bin/sh -c 'if [ ! -e /run/flaky-ok ]; then touch /run/flaky-ok; "
    "exit 1; fi; echo start >> /run/flaky-starts; exec sleep infinity'\n",
    "flaky2.service": "[Service]\nExecStart=/bin/sh -c 'if [ ! -e /run/flaky2-ok ]; then touch /run/flaky2-ok; "
    "exit 1; fi; echo start >> /run/flaky2-starts; exec sleep infinity'\n",
    "flaky3.service": "[Service]\nExecStart=/bin/sh -c 'if [ ! -e /run/flaky3-ok ]; then touch /run/flaky3-ok; "
    "exit 1; fi; echo start >> /run/flaky3-starts; exec sleep infinity'\n",
    # Takes a few seconds to start and fails the first time: the executor is killed while its
    # restart is under way.
    "slow.service": "[Service]\nExecStartPre=/bin/sh -c 'echo pre >> /run/slow-starts; exec sleep 5'\n"
    "ExecStart=/bin/sh -c 'if [ ! -e /run/slow-ok ]; then touch /run/slow-ok; exit 1; fi; "
    "exec sleep infinity'\n",
    # Runs fine: a forged "it failed" must not get it restarted.
    "healthy.service": "[Service]\nExecStart=/bin/sh -c 'echo start >> /run/healthy-starts; exec sleep infinity'\n",
    # Fails, and systemd waits an hour before its next automatic try (SubState=auto-restart).
    "looping.service": "[Service]\nRestart=always\nRestartSec=1h\nExecStart=/bin/sh -c 'if [ ! -e /run/looping-ok ]; "
    "then touch /run/looping-ok; exit 1; fi; echo start >> /run/looping-starts; "
    "exec sleep infinity'\n",
}


NIX = "/nix-test"  # the container's own local Nix store, state and profiles
NIX_ENV = {
    "NIX_STORE_DIR": f"{NIX}/store",
    "NIX_STATE_DIR": f"{NIX}/var",
    "NIX_LOG_DIR": f"{NIX}/var/log",
    "NIX_CONF_DIR": f"{NIX}/etc",
}
# RECORDING STAND-IN for NixOS's switch-to-configuration: logs, and points current-system at its generation.
SWITCH = f"""#!/bin/sh
export PATH=/bin:/usr/bin
out=$(cd "$(dirname "$0")/.." && pwd)
echo "$out $* unit=$(cat /proc/self/cgroup | tail -1)" >> {NIX}/switch.log
ln -sfn "$out" {NIX}/current-system
"""
DRV = """{ n }: derivation {
  name = "nixos-system-gen${n}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "export PATH=/bin:/usr/bin; mkdir -p $out/bin; cp ${./switch.sh} $out/bin/switch-to-configuration; chmod 555 $out/bin/switch-to-configuration" ];
}
"""


def _nix_binds(tmp: Path) -> list[tuple[str, str]]:
    """Debian's nix-bin and the libraries the bookworm root lacks, for use inside the container."""
    import shutil
    import subprocess

    nix = shutil.which("nix")
    if nix is None:
        need("nix-bin not installed (run scripts/provision-nix.sh)")
    libs = tmp / "nixlib"
    libs.mkdir()
    for line in subprocess.run(["ldd", nix], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and parts[1].split() and not parts[1].split()[0].startswith("/usr/lib/nix/"):
            lib = parts[1].split()[0]
            shutil.copy(os.path.realpath(lib), libs / os.path.basename(lib))
    return [
        (os.path.realpath(nix), "/usr/bin/nix"),
        ("/usr/lib/nix", "/usr/lib/nix"),
        ("/usr/libexec/nix", "/usr/libexec/nix"),
        (str(libs), f"{MNT}/nixlib"),
    ]


def _setup_nix(c: Container) -> list[str]:
    """Real Nix inside the container: two built system generations in a local store."""
    script = (
        f"printf '%s\\n' {MNT}/nixlib /usr/lib/nix > /etc/ld.so.conf.d/aisx-nix.conf && ldconfig && "
        "for n in nix-env nix-store nix-build nix-collect-garbage; do ln -sf /usr/bin/nix /usr/bin/$n; done && "
        f"mkdir -p {NIX}/etc && printf 'build-users-group =\\nsandbox = false\\nsubstituters =\\n' > {NIX}/etc/nix.conf"
    )
    r = c.sh(script)
    assert r.returncode == 0, r.stderr
    c.write(f"{NIX}/switch.sh", SWITCH)
    c.write(f"{NIX}/system.nix", DRV)
    env = " ".join(f"{k}={v}" for k, v in NIX_ENV.items())
    gens = []
    for n in (1, 2):
        r = c.sh(f"{env} nix-build {NIX}/system.nix --argstr n {n} --no-out-link", timeout=120)
        assert r.returncode == 0, r.stderr
        gens.append(r.stdout.strip())
        r = c.sh(f"{env} nix-env -p {NIX}/var/profiles/system --set {gens[-1]}")
        assert r.returncode == 0, r.stderr
    assert c.sh(f"ln -s {gens[-1]} {NIX}/current-system").returncode == 0
    return gens


def _site_packages() -> str:
    for p in site.getsitepackages():
        if Path(p, "psycopg").exists():
            return p
    need("no site-packages with psycopg (run under the provisioned venv)")
    raise AssertionError


class Host:
    def __init__(self, c: Container, db: RolesDB):
        self.c, self.db = c, db
        self.gens: list[str] = []

    def cli(self, *args: str, user: str = "root", config: str = "orch") -> Any:
        argv = ["/usr/local/bin/ai-sysadmin", "--config", f"/etc/ai-sysadmin/{config}.json", *args]
        if user != "root":
            argv = ["runuser", "-u", user, "--", *argv]
        return self.c.run(argv, timeout=120)

    def propose(
        self, unit: str | None, user: str = "nobody", config: str = "orch", action: str = "restart_unit", **params: Any
    ) -> dict[str, Any]:
        r = self.cli(
            "actions",
            "propose",
            action,
            "--params",
            json.dumps({"unit": unit} if unit else params),
            "--reason",
            "unit failed",
            user=user,
            config=config,
        )
        assert r.stdout.strip(), r.stderr
        return json.loads(r.stdout)

    def approve(self, action_id: int, reason: str, user: str = "root", config: str = "orch") -> Any:
        """As a person does: show the action, then approve the digest shown."""
        shown = self.cli("actions", "show", str(action_id), "--format", "json", config=config)
        digest = json.loads(shown.stdout)["digest"]
        return self.cli(
            "actions", "approve", str(action_id), "--digest", digest, "--reason", reason, user=user, config=config
        )

    def row(self, action_id: int) -> dict[str, Any]:
        with psycopg.connect(self.db.conninfo(self.db.orchestrator)) as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute("SELECT * FROM actions WHERE id = %s", (action_id,))
            return cur.fetchone()  # type: ignore[return-value]

    def wait_status(self, action_id: int, statuses: tuple[str, ...], timeout: float = 90) -> dict[str, Any]:
        wait_until(
            lambda: self.row(action_id)["status"] in statuses,
            timeout,
            f"action {action_id} in {statuses}",
            poll=0.2,
            alive=self.executor_dead,
        )
        return self.row(action_id)

    def executor_dead(self) -> str | None:
        state = self.c.run(["systemctl", "is-active", "aisx-executor.service"]).stdout.strip()
        if state in ("active", "activating"):
            return None
        return (
            "executor not running:\n"
            + self.c.run(["journalctl", "-u", "aisx-executor", "-n", "40", "--no-pager"]).stdout
        )

    def start_executor(self) -> None:
        self.c.run(["systemctl", "reset-failed", "aisx-executor.service"])
        r = self.c.run(
            [
                "systemd-run",
                "--unit=aisx-executor",
                "--property=Environment=PYTHONUNBUFFERED=1",
                *(f"--setenv={k}={v}" for k, v in NIX_ENV.items()),
                "/usr/local/bin/ai-sysadmin",
                "--config",
                "/etc/ai-sysadmin/executor.json",
                "executor",
            ]
        )
        assert r.returncode == 0, r.stderr
        wait_until(lambda: self.executor_dead() is None, 30, "executor started")
        # LISTEN is set up once the executor has connected; its log says so.
        wait_until(
            lambda: (
                "executor: autonomy"
                in self.c.run(["journalctl", "-u", "aisx-executor", "--no-pager", "-o", "cat"]).stdout
            ),
            60,
            "executor ready",
            alive=self.executor_dead,
        )

    def lines(self, path: str) -> int:
        r = self.c.run(["cat", path])
        return len(r.stdout.splitlines()) if r.returncode == 0 else 0

    def refusal(self, action_id: int) -> str:
        """The executor's reason in the action's steps; the audit log carries the same one."""
        with psycopg.connect(self.db.conninfo(self.db.orchestrator)) as conn:
            step = conn.execute(
                "SELECT reason FROM action_steps WHERE action_id = %s AND to_status = 'refused' "
                "AND actor = 'ai-sysadmin-executor'",
                (action_id,),
            ).fetchone()
            audit = conn.execute(
                "SELECT detail->>'reason' FROM audit_log WHERE subject = %s "
                "AND event = 'action.refused' AND actor = 'ai-sysadmin-executor'",
                (f"action:{action_id}",),
            ).fetchone()
        assert step is not None and audit == step, (step, audit)
        return str(step[0])

    def audit(self, action_id: int) -> list[str]:
        with psycopg.connect(self.db.conninfo(self.db.orchestrator)) as conn:
            cur = conn.execute(
                "SELECT actor || ':' || event FROM audit_log WHERE subject = %s ORDER BY id", (f"action:{action_id}",)
            )
            return [r[0] for r in cur.fetchall()]


@contextmanager
def booted_host(pg_cluster, roles, tmp: Path) -> Iterator[tuple[Container, RolesDB]]:
    """A booted bookworm container with this checkout, the database socket and a Nix store bound in,
    `ai-sysadmin` on its PATH and an approval key only root reads; stopped and its database dropped after."""
    try:
        root = nspawn_root()
    except PartMissing as exc:
        need(str(exc))
    db = make_roles_db(pg_cluster, roles)
    sock = str(pg_cluster.sockdir)
    binds = [(str(REPO), f"{MNT}/src"), (_site_packages(), f"{MNT}/site"), (sock, sock), *_nix_binds(tmp)]
    c = Container(root, tmp / "nspawn.log", binds_ro=binds)
    c.start()
    try:
        c.write(
            "/usr/local/bin/ai-sysadmin",
            "#!/bin/sh\n"
            f"export PYTHONPATH={MNT}/src:{MNT}/site PYTHONDONTWRITEBYTECODE=1\n"
            'exec /usr/bin/python3 -m ai_sysadmin "$@"\n',
        )
        c.write("/etc/ai-sysadmin/approval.key", secrets.token_hex(32))
        assert c.sh("chmod 755 /usr/local/bin/ai-sysadmin && chmod 600 /etc/ai-sysadmin/approval.key").returncode == 0
        yield c, db
    finally:
        c.stop()
        if pg_cluster.running():
            pg_cluster.drop_database(db.name)


@pytest.fixture(scope="module")
def host(pg_cluster, roles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    with booted_host(pg_cluster, roles, tmp_path_factory.mktemp("nspawn-actions")) as (c, db):
        gens = _setup_nix(c)

        def cfg(role: str, level: str, **actions: Any) -> str:
            return json.dumps(
                {
                    "state_dir": "/tmp/aisx-state",
                    "autonomy_level": level,
                    "database": db.section(role),
                    "actions": {
                        "approval_key_file": "/etc/ai-sysadmin/approval.key",
                        "poll_interval": 1,
                        "verify_window_seconds": 2,
                        "cooldown_seconds": 0,
                        # one rendered settings file on NixOS: the proposer binds rollbacks to this profile
                        "system_profile": f"{NIX}/var/profiles/system",
                        "current_system": f"{NIX}/current-system",
                        **actions,
                    },
                }
            )

        c.write("/etc/ai-sysadmin/orch.json", cfg(db.orchestrator, "auto-safe"))
        c.write("/etc/ai-sysadmin/orch-suggest.json", cfg(db.orchestrator, "suggest"))
        c.write("/etc/ai-sysadmin/orch-short-ttl.json", cfg(db.orchestrator, "suggest", approval_ttl_seconds=1))
        c.write("/etc/ai-sysadmin/executor.json", cfg(db.executor, "auto-safe", nix_mode="run"))
        assert c.sh("chmod 644 /etc/ai-sysadmin/*.json").returncode == 0
        for name, text in UNITS.items():
            c.write(f"/etc/systemd/system/{name}", text)
        # An alias of a protected unit, under an innocent name.
        c.sh("ln -s /lib/systemd/system/systemd-journald.service /etc/systemd/system/harmless.service")
        assert c.run(["systemctl", "daemon-reload"]).returncode == 0
        h = Host(c, db)
        h.gens = gens
        h.start_executor()
        yield h


def test_auto_safe_restart_by_the_executor_is_verified(host: Host) -> None:
    c = host.c
    c.run(["systemctl", "start", "flaky.service"])
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "flaky.service"]).stdout.strip() == "failed",
        30,
        "flaky.service failed",
    )
    # the orchestrator's user cannot restart it itself, nor read the approval key
    r = c.run(["runuser", "-u", "nobody", "--", "systemctl", "restart", "flaky.service"])
    assert r.returncode != 0
    assert c.run(["runuser", "-u", "nobody", "--", "cat", "/etc/ai-sysadmin/approval.key"]).returncode != 0

    out = host.propose("flaky.service")
    assert (out["decision"], out["risk"]) == ("execute", "low")
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "verified", row
    assert row["verification"]["passed"] and row["result"]["steps"][0]["argv"] == [
        "systemctl",
        "restart",
        "--",
        "flaky.service",
    ]
    assert c.run(["systemctl", "is-active", "flaky.service"]).stdout.strip() == "active"
    assert host.lines("/run/flaky-starts") == 1
    events = host.audit(out["action_id"])
    assert events[0] == "ai-sysadmin:action.execute"
    assert {
        "ai-sysadmin-executor:action.executing",
        "ai-sysadmin-executor:action.step",
        "ai-sysadmin-executor:action.verified",
    } <= set(events)
    show = host.cli("actions", "show", str(out["action_id"]))
    assert "verification passed" in show.stdout and "[ok] flaky.service is active" in show.stdout


def test_a_restart_of_a_healthy_unit_is_refused(host: Host) -> None:
    """The story says it failed; systemd says it is active: the executor believes systemd."""
    c = host.c
    assert c.run(["systemctl", "start", "healthy.service"]).returncode == 0
    out = host.propose("healthy.service")
    assert out["decision"] == "execute"  # the policy alone would run it
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "refused" and row["started_at"] is None and row["result"] is None
    reason = host.refusal(out["action_id"])
    assert reason.startswith(
        "precondition not met: healthy.service is neither failed nor restart-looping (ActiveState=active"
    ), reason
    assert "ai-sysadmin-executor:action.refused" in host.audit(out["action_id"])
    assert host.lines("/run/healthy-starts") == 1  # never restarted
    # nor a unit that does not exist
    ghost = host.propose("no-such-unit.service")
    assert host.wait_status(ghost["action_id"], FINAL)["status"] == "refused"
    assert "no-such-unit.service is not a loaded unit (LoadState=not-found)" in host.refusal(ghost["action_id"])


def test_a_restart_looping_unit_is_restarted(host: Host) -> None:
    c = host.c
    c.run(["systemctl", "start", "looping.service"])
    wait_until(
        lambda: (
            c.run(["systemctl", "show", "-p", "SubState", "--value", "looping.service"]).stdout.strip()
            == "auto-restart"
        ),
        30,
        "looping.service waiting to restart",
    )
    out = host.propose("looping.service")
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "verified", (row, host.row(out["action_id"]))
    assert host.lines("/run/looping-starts") == 1


def test_protected_units_are_refused_even_under_an_alias(host: Host) -> None:
    c = host.c
    out = host.propose("sshd.service")
    assert out["decision"] == "refuse" and "protected" in out["reason"]
    # the policy asks systemd for every name of the unit: an alias of journald is refused up front
    alias = host.propose("harmless.service")
    assert alias["decision"] == "refuse" and "protected" in alias["reason"], alias
    assert host.row(alias["action_id"])["status"] == "refused"
    # an alias made after the decision: the executor asks systemd again and refuses
    late = host.propose("innocent.service", config="orch-suggest")
    assert late["decision"] == "queue"
    assert (
        c.sh(
            "ln -s /lib/systemd/system/systemd-journald.service /etc/systemd/system/innocent.service && "
            "systemctl daemon-reload"
        ).returncode
        == 0
    )
    try:
        r = host.approve(late["action_id"], "looks right")
        assert r.returncode == 0, r.stderr
        row = host.wait_status(late["action_id"], FINAL)
    finally:
        c.sh("rm -f /etc/systemd/system/innocent.service && systemctl daemon-reload")
    assert row["status"] == "refused" and row["started_at"] is None
    assert "protected unit systemd-journald.service" in host.refusal(late["action_id"])


def test_suggest_waits_until_a_person_approves(host: Host) -> None:
    c = host.c
    c.run(["systemctl", "start", "flaky2.service"])
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "flaky2.service"]).stdout.strip() == "failed", 30, "flaky2 failed"
    )
    out = host.propose("flaky2.service", config="orch-suggest")
    assert out["decision"] == "queue"
    # the executor has seen the queue (a later auto action on another unit ran); this one still waits
    other = host.propose("flaky.service")
    host.wait_status(other["action_id"], FINAL)
    assert host.row(out["action_id"])["status"] == "queued" and host.lines("/run/flaky2-starts") == 0
    # the orchestrator's user cannot approve (no key); root can
    r = host.approve(out["action_id"], "looks right", user="nobody")
    assert r.returncode == 1 and "not readable" in r.stderr and "Traceback" not in r.stderr
    r = host.approve(out["action_id"], "looks right")
    assert r.returncode == 0, r.stderr
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "verified" and host.lines("/run/flaky2-starts") == 1
    show = host.cli("actions", "show", str(out["action_id"])).stdout
    assert "approval (person, signed) by root" in show


def test_an_expired_approval_does_nothing(host: Host) -> None:
    c = host.c
    c.run(["systemctl", "start", "flaky3.service"])
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "flaky3.service"]).stdout.strip() == "failed", 30, "flaky3 failed"
    )
    assert host.cli("pause").returncode == 0
    out = host.propose("flaky3.service", config="orch-suggest")
    assert out["decision"] == "queue" and "paused" in out["reason"]
    r = host.approve(out["action_id"], "ok", config="orch-short-ttl")
    assert r.returncode == 0, r.stderr
    with psycopg.connect(host.db.conninfo(host.db.orchestrator)) as conn:
        expires = conn.execute(
            "SELECT expires_at FROM action_approvals WHERE action_id = %s", (out["action_id"],)
        ).fetchone()[0]
        wait_until(
            lambda: conn.execute("SELECT clock_timestamp() > %s", (expires,)).fetchone()[0], 10, "approval expired"
        )
    assert host.cli("resume").returncode == 0
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "expired" and row["started_at"] is None
    assert host.lines("/run/flaky3-starts") == 0
    assert c.run(["systemctl", "is-failed", "flaky3.service"]).stdout.strip() == "failed"


def test_kill_9_mid_action_is_interrupted_verified_and_not_rerun(host: Host) -> None:
    c = host.c
    c.run(["systemctl", "start", "slow.service"], timeout=60)
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "slow.service"]).stdout.strip() == "failed", 30, "slow.service failed"
    )
    assert host.lines("/run/slow-starts") == 1
    out = host.propose("slow.service")
    assert out["decision"] == "execute"
    host.wait_status(out["action_id"], ("executing",))
    # the restart is under way (ExecStartPre of the new start is running) when the executor dies
    wait_until(lambda: host.lines("/run/slow-starts") == 2, 30, "restart under way")
    assert c.run(["systemctl", "kill", "--signal=KILL", "aisx-executor.service"]).returncode == 0
    wait_until(lambda: host.executor_dead() is not None, 30, "executor killed")
    assert host.row(out["action_id"])["status"] == "executing"
    host.start_executor()
    row = host.wait_status(out["action_id"], ("interrupted",))
    wait_until(lambda: host.row(out["action_id"])["verification"] is not None, 90, "verification recorded")
    row = host.row(out["action_id"])
    assert row["verification"]["passed"] and row["verification"]["interrupted"]
    assert c.run(["systemctl", "is-active", "slow.service"]).stdout.strip() == "active"
    assert host.lines("/run/slow-starts") == 2  # the initial start and the one restart: never re-run
    with psycopg.connect(host.db.conninfo(host.db.orchestrator)) as conn:
        steps = [
            r[0]
            for r in conn.execute(
                "SELECT to_status FROM action_steps WHERE action_id = %s ORDER BY id", (out["action_id"],)
            ).fetchall()
        ]
    assert steps == ["approved", "executing", "interrupted"]


def test_rollback_generation_runs_the_switch_detached_with_systemd_run(host: Host) -> None:
    c = host.c
    gen1, _gen2 = host.gens
    out = host.propose(None, action="rollback_generation")
    assert out["decision"] == "queue" and "high risk" in out["reason"]
    r = host.approve(out["action_id"], "upgrade broke nginx")
    assert r.returncode == 0, r.stderr
    row = host.wait_status(out["action_id"], FINAL, timeout=120)
    assert row["status"] == "verified", row["verification"]
    steps = row["result"]["steps"]
    assert steps[0]["argv"] == ["nix-env", "--rollback", "-p", f"{NIX}/var/profiles/system"]
    assert steps[1]["argv"] == [f"{gen1}/bin/switch-to-configuration", "switch"]
    unit = f"ai-sysadmin-action-{out['action_id']}.service"
    assert f"detached as {unit}" in steps[1]["stderr"]
    record = c.run(["cat", f"{NIX}/switch.log"]).stdout.split()
    # it ran from the rolled-back generation's store path, inside its own transient unit
    assert record[:2] == [gen1, "switch"] and record[2].endswith(f"/{unit}")
    assert c.run(["readlink", "-f", f"{NIX}/current-system"]).stdout.strip() == gen1
    assert c.run(["systemctl", "is-active", unit]).stdout.strip() in ("inactive", "unknown")  # cleaned up


def test_vacuum_journal_is_refused_while_the_journal_has_room(host: Host) -> None:
    out = host.propose(None, action="vacuum_journal", max_size_mb=1024)
    assert out["decision"] == "execute"
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "refused" and row["started_at"] is None
    reason = host.refusal(out["action_id"])
    assert (
        reason.startswith("precondition not met: the file system holding /")
        and "% full, below thresholds.disk_percent 90%" in reason
    ), reason


def test_vacuum_journal_runs_when_the_journal_file_system_is_full(host: Host) -> None:
    c = host.c
    # A small file system for /var/log/journal, 15 of its 16 MiB taken: above the 90% threshold.
    r = c.sh(
        "mkdir -p /var/log/journal && mount -t tmpfs -o size=16m,mode=2755 aisx-journal /var/log/journal && "
        "journalctl --rotate && head -c 15M /dev/zero > /var/log/journal/filler"
    )
    try:
        assert r.returncode == 0, r.stderr
        out = host.propose(None, action="vacuum_journal", max_size_mb=64)
        assert out["decision"] == "execute"
        row = host.wait_status(out["action_id"], FINAL)
    finally:
        c.sh("rm -f /var/log/journal/filler; umount -l /var/log/journal; journalctl --rotate")
    assert row["status"] == "verified", (row["verification"], host.cli("actions", "show", str(out["action_id"])).stdout)
    assert [s["argv"] for s in row["result"]["steps"]] == [
        ["journalctl", "--rotate"],
        ["journalctl", "--vacuum-size=64M"],
    ]


def test_reset_failed_on_real_systemd(host: Host) -> None:
    c = host.c
    c.write("/etc/systemd/system/broken.service", "[Service]\nExecStart=/bin/false\n")
    c.run(["systemctl", "daemon-reload"])
    c.run(["systemctl", "start", "broken.service"])
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "broken.service"]).stdout.strip() == "failed", 30, "broken failed"
    )
    out = host.propose("broken.service", action="reset_failed_unit")
    row = host.wait_status(out["action_id"], FINAL)
    assert row["status"] == "verified", row["verification"]
    assert c.run(["systemctl", "is-failed", "broken.service"]).stdout.strip() != "failed"
