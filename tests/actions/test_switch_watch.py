"""The watch after a switch, end to end on real systemd (issue 20, docs/preflight.md).

One `systemd-nspawn --boot` container with real Nix (a local store, as in
test_nspawn.py) holding four built system generations: NixOS-like toplevels
(`nixos-version`, `etc/systemd/system` with units whose ExecStart is a versioned package
in the store, so `nix store diff-closures` names the change).  Their
`bin/switch-to-configuration` is a RECORDING STAND-IN for NixOS's: it re-points the
running-system link, links the generation's units into /etc/systemd/system and restarts
them, as the real one does for changed units.

The service (`ai-sysadmin run`: L1 on the container's real journald, incidents, the
switch watch, the review without a model) runs as `nobody` in the systemd-journal group,
its Nix calls through a real nix-daemon; the executor runs as root.  A switch to a
generation whose unit fails makes an incident attributed to the switch, the review
proposes `rollback_generation` bound to that generation with the proof, a person
approves the digest shown, the executor rolls back and verifies the unit recovered.  A
switch made after the approval makes the executor refuse, saying why.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from rig.net import wait_until
from tests.actions.test_nspawn import FINAL, MNT, NIX, NIX_ENV, Host, booted_host

pytestmark = pytest.mark.slow
PROFILE = f"{NIX}/var/profiles/system"

# RECORDING STAND-IN for switch-to-configuration: what the real one does for this system's units.
SWITCH = f"""#!/bin/sh
export PATH=/bin:/usr/bin
out=$(cd "$(dirname "$0")/.." && pwd)
echo "$out $*" >> {NIX}/switch.log
ln -sfn "$out" {NIX}/current-system
for u in app.service api.service; do ln -sfn "$out/etc/systemd/system/$u" /etc/systemd/system/$u; done
systemctl daemon-reload
systemctl restart app.service api.service
exit 0
"""
BUILD_PKG = """export PATH=/bin:/usr/bin
mkdir -p $out/bin
if [ "$ok" = 1 ]; then body='exec sleep infinity'; else body='echo "$0: cannot parse its configuration" >&2; exit 1'; fi
printf '#!/bin/sh\\n%s\\n' "$body" > $out/bin/$pname
chmod 555 $out/bin/$pname
"""
BUILD_SYSTEM = """export PATH=/bin:/usr/bin
mkdir -p $out/bin $out/etc/systemd/system/multi-user.target.wants
echo "99.$n" > $out/nixos-version
cp $switch $out/bin/switch-to-configuration && chmod 555 $out/bin/switch-to-configuration
printf '[Service]\\nExecStart=%s/bin/app\\n' "$app" > $out/etc/systemd/system/app.service
printf '[Service]\\nExecStart=%s/bin/api\\n' "$api" > $out/etc/systemd/system/api.service
ln -s ../app.service ../api.service $out/etc/systemd/system/multi-user.target.wants/
"""
SYSTEM_NIX = """{ n, app, appOk, api, apiOk }:
let
  pkg = pname: version: ok: derivation {
    name = "${pname}-${version}"; inherit pname ok; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ ./build-pkg.sh ];
  };
in derivation {
  name = "nixos-system-box-99.${n}"; inherit n; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ ./build-system.sh ]; switch = ./switch.sh;
  app = pkg "app" app appOk; api = pkg "api" api apiOk;
}
"""
# generation -> (app version, app runs, api version, api runs)
SYSTEMS = {
    1: ("1.0", True, "1.0", True),
    2: ("1.1", False, "1.0", True),
    3: ("1.2", True, "1.0", True),
    4: ("1.2", True, "1.1", False),
}
ENV = " ".join(f"{k}={v}" for k, v in NIX_ENV.items())


class Switching(Host):
    systems: dict[int, str]

    def build(self) -> None:
        c = self.c
        r = c.sh(
            f"printf '%s\\n' {MNT}/nixlib /usr/lib/nix > /etc/ld.so.conf.d/aisx-nix.conf && ldconfig && "
            "for n in nix-env nix-store nix-build nix-daemon; do ln -sf /usr/bin/nix /usr/bin/$n; done && "
            f"mkdir -p {NIX}/etc && printf 'build-users-group =\\nsandbox = false\\nsubstituters =\\n' "
            f"> {NIX}/etc/nix.conf"
        )
        assert r.returncode == 0, r.stderr
        for name, text in (
            ("switch.sh", SWITCH),
            ("build-pkg.sh", BUILD_PKG),
            ("build-system.sh", BUILD_SYSTEM),
            ("system.nix", SYSTEM_NIX),
        ):
            c.write(f"{NIX}/{name}", text)
        self.systems = {}
        for n, (app, app_ok, api, api_ok) in SYSTEMS.items():
            r = c.sh(
                f"{ENV} nix-build {NIX}/system.nix --argstr n {n} --argstr app {app} --argstr appOk "
                f"{int(app_ok)} --argstr api {api} --argstr apiOk {int(api_ok)} --no-out-link",
                timeout=120,
            )
            assert r.returncode == 0, r.stderr
            self.systems[n] = r.stdout.strip()
        # The Nix daemon answers the unprivileged service's store queries, as on NixOS.
        r = c.run(
            [
                "systemd-run",
                "--unit=aisx-nix-daemon",
                *(f"--setenv={k}={v}" for k, v in NIX_ENV.items()),
                "/usr/bin/nix-daemon",
            ]
        )
        assert r.returncode == 0, r.stderr
        wait_until(
            lambda: c.run(["test", "-S", f"{NIX}/var/daemon-socket/socket"]).returncode == 0, 30, "nix-daemon socket"
        )

    def switch(self, n: int) -> None:
        """As `nixos-rebuild switch` does: a new profile generation, then its switch-to-configuration."""
        r = self.c.sh(
            f"{ENV} nix-env -p {PROFILE} --set {self.systems[n]} && "
            f"{self.systems[n]}/bin/switch-to-configuration switch"
        )
        assert r.returncode == 0, r.stderr

    def generation(self) -> int:
        link = self.c.run(["readlink", PROFILE]).stdout.strip()
        return int(link.rsplit("-", 2)[-2])

    def start_service(self) -> None:
        c = self.c
        r = c.run(
            [
                "systemd-run",
                "--unit=aisx-service",
                "--uid=nobody",
                "--gid=nogroup",
                "--property=SupplementaryGroups=systemd-journal",
                "--property=Environment=PYTHONUNBUFFERED=1",
                "--setenv=NIX_REMOTE=daemon",
                *(f"--setenv={k}={v}" for k, v in NIX_ENV.items()),
                "/usr/local/bin/ai-sysadmin",
                "--config",
                "/etc/ai-sysadmin/service.json",
                "run",
            ]
        )
        assert r.returncode == 0, r.stderr
        # L1 reads the journal from its start (no cursor yet); the watch has taken its baseline.
        wait_until(
            lambda: (
                self.watching() is not None
                and "switch watch: " in c.run(["journalctl", "-u", "aisx-service", "--no-pager", "-o", "cat"]).stdout
            ),
            90,
            "service ready",
            poll=0.2,
            alive=self.service_dead,
        )

    def service_dead(self) -> str | None:
        if self.c.run(["systemctl", "is-active", "aisx-service.service"]).stdout.strip() in ("active", "activating"):
            return None
        return (
            "service not running:\n" + self.c.run(["journalctl", "-u", "aisx-service", "-n", "60", "--no-pager"]).stdout
        )

    def watching(self) -> int | None:
        """The schema the service migrated (it runs the watch once migrated)."""
        try:
            with psycopg.connect(self.db.conninfo(self.db.orchestrator)) as conn:
                row = conn.execute("SELECT count(*) FROM cursors WHERE stream = 'journal'").fetchone()
                return None if not row or row[0] == 0 else int(row[0])
        except psycopg.Error:
            return None

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.db.conninfo(self.db.orchestrator)) as conn:
            cur = conn.cursor(row_factory=dict_row)
            cur.execute(sql, args)  # type: ignore[arg-type]
            return cur.fetchall()

    def rollback_proposal(self, from_generation: int, timeout: float = 120) -> dict[str, Any]:
        """The review's proposal for the incident attributed to the switch to `from_generation`."""
        sql = (
            "SELECT a.*, x.failed_at, x.attributed_at, x.units AS attributed_units FROM actions a "
            "JOIN switch_incidents x ON x.incident_id = a.incident_id JOIN switches s ON s.id = x.switch_id "
            "WHERE a.action = 'rollback_generation' AND s.to_generation = %s"
        )
        wait_until(
            lambda: bool(self.query(sql, from_generation)),
            timeout,
            f"rollback_generation proposed for generation {from_generation}",
            poll=0.2,
            alive=self.service_dead,
        )
        return self.query(sql, from_generation)[0]


@pytest.fixture(scope="module")
def host(pg_cluster, roles, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Switching]:
    with booted_host(pg_cluster, roles, tmp_path_factory.mktemp("nspawn-switch")) as (c, db):
        h = Switching(c, db)
        h.build()
        assert c.sh("mkdir -p /var/lib/aisx && chown nobody /var/lib/aisx").returncode == 0

        def cfg(role: str, level: str, state: str, **extra: Any) -> str:
            return json.dumps(
                {
                    "state_dir": state,
                    "autonomy_level": level,
                    "database": db.section(role),
                    "actions": {
                        "approval_key_file": "/etc/ai-sysadmin/approval.key",
                        "poll_interval": 1,
                        "verify_window_seconds": 2,
                        "cooldown_seconds": 0,
                        "system_profile": PROFILE,
                        "current_system": f"{NIX}/current-system",
                        **extra.pop("actions", {}),
                    },
                    **extra,
                }
            )

        c.write("/etc/ai-sysadmin/orch.json", cfg(db.orchestrator, "suggest", "/tmp/aisx-state"))
        c.write(
            "/etc/ai-sysadmin/executor.json",
            cfg(db.executor, "suggest", "/tmp/aisx-state", actions={"nix_mode": "run"}),
        )
        # The service: no models (the review proposes the deterministic candidates), the watch polling fast.
        c.write(
            "/etc/ai-sysadmin/service.json",
            cfg(
                db.orchestrator,
                "suggest",
                "/var/lib/aisx",
                roles={"trigger": {"enable": False}, "review": {"enable": False}, "meta": {"enable": False}},
                trigger={"model": False, "commit_interval": 0.1, "poll_interval": 0.1},
                intervals={"review": 1, "metrics": 5},
                review={"switch_poll": 0.5, "switch_window": 900},
            ),
        )
        assert c.sh("chmod 644 /etc/ai-sysadmin/*.json").returncode == 0
        h.switch(1)  # the running system before the service starts: generation 1, both units up
        wait_until(
            lambda: (
                c.run(["systemctl", "is-active", "app.service", "api.service"]).stdout.split() == ["active", "active"]
            ),
            30,
            "generation 1 running",
        )
        h.start_executor()
        h.start_service()
        yield h


def _secs(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds()


def test_a_switch_made_after_the_approval_is_refused(host: Switching) -> None:
    c = host.c
    host.switch(2)  # app 1.1 cannot start
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "app.service"]).stdout.strip() == "failed", 30, "app.service failed"
    )
    row = host.rollback_proposal(2)
    assert row["params"] == {"from_generation": 2} and row["status"] == "queued" and row["risk"] == "high"
    assert row["source"] == "rules" and row["attributed_units"] == ["app.service"]
    # the proof: the generation pair, how the switch touched the unit, the closure diff
    assert "switch generation 1 \u2192 2" in row["proposal_reason"], row["proposal_reason"]
    assert "app.service failed after it (stop-start:" in row["proposal_reason"], row["proposal_reason"]
    assert "app 1.0 \u2192 1.1" in row["proposal_reason"], row["proposal_reason"]
    print(f"\nfailure -> attributed incident: {_secs(row['failed_at'], row['attributed_at']):.2f} s")

    shown = json.loads(host.cli("actions", "show", str(row["id"]), "--format", "json").stdout)
    assert shown["params"] == {"from_generation": 2}  # what the digest covers
    assert host.cli("pause").returncode == 0  # the executor waits: the approval and a new switch come first
    r = host.cli("actions", "approve", str(row["id"]), "--digest", shown["digest"], "--reason", "undo the upgrade")
    assert r.returncode == 0, r.stderr
    host.switch(3)  # the admin fixed forward meanwhile: generation 3 runs
    assert c.run(["systemctl", "is-active", "app.service"]).stdout.strip() == "active"
    assert host.cli("resume").returncode == 0
    done = host.wait_status(row["id"], FINAL)
    assert done["status"] == "refused" and done["started_at"] is None
    reason = host.refusal(row["id"])
    assert reason == (
        f"precondition not met: {PROFILE} is at generation 3, not 2: the system changed since this was proposed"
    ), reason
    assert host.generation() == 3 and "nix-env" not in c.run(["cat", f"{NIX}/switch.log"]).stdout


def test_a_failing_switch_is_attributed_rolled_back_and_verified(host: Switching) -> None:
    c = host.c
    host.switch(4)  # api 1.1 cannot start
    wait_until(
        lambda: c.run(["systemctl", "is-failed", "api.service"]).stdout.strip() == "failed", 30, "api.service failed"
    )
    row = host.rollback_proposal(4)
    assert row["params"] == {"from_generation": 4} and row["status"] == "queued"
    assert (
        "switch generation 3 \u2192 4" in row["proposal_reason"] and "api 1.0 \u2192 1.1" in row["proposal_reason"]
    ), row["proposal_reason"]
    latency = _secs(row["failed_at"], row["attributed_at"])
    print(f"\nfailure -> attributed incident: {latency:.2f} s")
    assert latency < 30

    # what a person sees before approving
    show = host.cli("incidents", "show", str(row["incident_id"]))
    assert show.returncode == 0, show.stderr
    print(f"proof: {row['proposal_reason']}\n{show.stdout}")
    assert "after switch generation 3 -> 4" in show.stdout and "api.service failed" in show.stdout, show.stdout
    assert "unit change: api.service stop-start" in show.stdout and "closure: api 1.0 -> 1.1" in show.stdout
    status = host.cli("status")
    assert "last switch: generation 3 -> 4" in status.stdout, status.stdout
    assert f"failed after it: api.service -> incident #{row['incident_id']}" in status.stdout, status.stdout

    r = host.approve(row["id"], "api broke with the switch")
    assert r.returncode == 0, r.stderr
    done = host.wait_status(row["id"], FINAL, timeout=120)
    assert done["status"] == "verified", done["verification"]
    checks = {ch["check"]: ch for ch in done["verification"]["checks"]}
    assert checks["api.service (failed after the switch) is active again"]["passed"], checks
    assert [s["argv"][:2] for s in done["result"]["steps"]] == [
        ["nix-env", "--rollback"],
        [f"{host.systems[3]}/bin/switch-to-configuration", "switch"],
    ]
    assert host.generation() == 3
    assert c.run(["systemctl", "is-active", "api.service"]).stdout.strip() == "active"
    # the rollback is itself a switch the watch records (4 -> 3)
    wait_until(
        lambda: bool(host.query("SELECT 1 FROM switches WHERE from_generation = 4 AND to_generation = 3")),
        30,
        "the rollback noticed as a switch",
        alive=host.service_dead,
    )
