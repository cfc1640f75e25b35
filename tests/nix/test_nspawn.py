"""Real systemd: the rendered units run in a booted Debian bookworm container.

module.nix is rendered (nixpkgs STAND-IN) with its package options pointing at real
programs (rig/nixos_driver.py: the provisioned llama-server, a launcher for this
checkout's Python package, Debian's PostgreSQL 15 under the rendered postgresql.service
and postgresql-setup.service), booted with `systemd-nspawn --boot` and started the way
NixOS starts them at boot.  The container shares the host's network namespace, so ports
are picked with bind 0 and the servers are reached from the host.  One container serves
the whole module.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.net import free_port, wait_until
from rig.nixos_driver import Machine, RigPackages, render_config
from rig.paths import PartMissing
from rig.require import need
from tests.nix.cases import base

ROLES = ("trigger", "review", "meta")
HOG_MB = 400  # another user's process that must top the memory list
pytestmark = pytest.mark.slow


def _health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return r.status == 200 and json.load(r).get("status") == "ok"
    except Exception:
        return False


def _chat(port: int, model: str) -> dict[str, Any]:
    body = json.dumps({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi"}]}).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


class FullFilesystem:
    """A small tmpfs, filled to the last page, mounted on the host.

    It is bound into the container under /home, where ProtectHome=true would hide it:
    the issue's case of a full tmpfs /home (a diskless host, or /home on tmpfs).
    """

    def __init__(self, tmp: Path):
        self.mnt = tmp / "home-full"

    def __enter__(self) -> FullFilesystem:
        self.mnt.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(self.mnt)], capture_output=True, text=True
        )
        if r.returncode != 0:
            need(f"tmpfs mount not possible here: {r.stderr.strip()}")
        # dd ends with ENOSPC: that is the point.
        subprocess.run(["dd", "if=/dev/zero", f"of={self.mnt}/fill", "bs=64k"], capture_output=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["umount", str(self.mnt)], capture_output=True)


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, nix_instantiate: str) -> Iterator[tuple[Machine, dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("nspawn")
    try:
        rig = RigPackages()
    except PartMissing as exc:
        need(str(exc))
    rig.prepare()
    try:
        with FullFilesystem(tmp) as full:
            ports = {r: free_port() for r in ROLES} | {"api": free_port(), "pg": free_port()}
            cfg = base(
                package=rig.package(),
                llamacpp={
                    "acceleration": "cpu",
                    **{
                        r: {"model": str(rig.model), "port": ports[r], "contextSize": 512, "parallel": 1, "threads": 1}
                        for r in ROLES
                    },
                },
                api={"enable": True, "port": ports["api"]},
                database={"timescaledb": "none"},  # Debian has no TimescaleDB build
                settings={"intervals": {"metrics": 2}},
            )
            # The host's network namespace: its own PostgreSQL port, and no firewall
            # rules (they would land in the host's tables).
            cfg["services"]["postgresql"] = {"settings": {"port": ports["pg"]}}
            cfg["networking"] = {"firewall": {"enable": False}}
            out = render_config(cfg, rig)
            assert out["assertions"] == [], out["assertions"]
            node = {**out, "systemPackages": []}
            m = Machine("host", node, rig, tmp, private_network=False, extra_binds=[(str(full.mnt), "/home/full")])
            try:
                m.start()
                yield m, {"ports": ports, "out": out}
            finally:
                m.shutdown()
    finally:
        rig.cleanup()


@pytest.fixture(scope="module")
def running(booted: tuple[Machine, dict[str, Any]]) -> tuple[Machine, dict[str, Any]]:
    m, info = booted
    for role in ROLES:
        m.wait_for_unit(f"llama-{role}.service", timeout=120)
        try:
            wait_until(lambda role=role: _health(info["ports"][role]), 180, f"llama-{role} /health", poll=0.2)
        except TimeoutError:
            pytest.fail(f"llama-{role} not healthy:\n{m._journal(f'llama-{role}.service')}")
    m.wait_for_unit("postgresql.target", timeout=120)
    m.wait_for_unit("ai-sysadmin.service", timeout=120)
    return booted


def _psql(m: Machine, port: int, sql: str) -> str:
    return m.succeed(f"sudo -u postgres psql -p {port} -d ai-sysadmin -tAc {json.dumps(sql)}")


def _main_pid(m: Machine, unit: str) -> int:
    return int(m.get_unit_info(unit)["MainPID"])


@pytest.mark.parametrize("role", ROLES)
def test_llama_unit_active_and_answers(running: tuple[Machine, dict[str, Any]], role: str) -> None:
    m, info = running
    assert m.get_unit_info(f"llama-{role}.service")["ActiveState"] == "active"
    reply = _chat(info["ports"][role], role)
    assert reply["choices"][0]["message"]["content"] is not None
    assert reply["model"] == role


def test_ports_bound_on_loopback_only(running: tuple[Machine, dict[str, Any]]) -> None:
    _, info = running
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout.split("\n")
    for role in ROLES:
        port = info["ports"][role]
        addrs = {line.split()[3] for line in listening if line.split() and line.split()[3].endswith(f":{port}")}
        assert addrs == {f"127.0.0.1:{port}"}, (role, addrs)


def test_dynamic_user_and_sandbox(running: tuple[Machine, dict[str, Any]]) -> None:
    m, _ = running
    status = m.succeed(f"cat /proc/{_main_pid(m, 'llama-trigger.service')}/status")
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid != 0
    cap_eff = next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1]
    assert int(cap_eff, 16) == 0
    assert "NoNewPrivs:\t1" in status and "Seccomp:\t2" in status


def test_killed_llama_is_restarted(running: tuple[Machine, dict[str, Any]]) -> None:
    m, info = running
    unit = "llama-review.service"
    before = _main_pid(m, unit)
    assert before > 0
    m.succeed(f"kill -9 {before}")
    wait_until(
        lambda: _main_pid(m, unit) not in (0, before) and m.get_unit_info(unit)["ActiveState"] == "active",
        60,
        "restart after kill",
        poll=0.2,
    )
    wait_until(lambda: _health(info["ports"]["review"]), 120, "llama-review healthy again", poll=0.2)
    assert int(m.get_unit_info(unit)["NRestarts"]) >= 1


def test_orchestrator_runs_with_the_journal_group_only(running: tuple[Machine, dict[str, Any]]) -> None:
    m, _ = running
    status = m.succeed(f"cat /proc/{_main_pid(m, 'ai-sysadmin.service')}/status")
    groups = next(line for line in status.splitlines() if line.startswith("Groups:")).split()[1:]
    journal = m.succeed("getent group systemd-journal").split(":")[2]
    own = next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1]
    assert set(groups) - {own} == {journal}, groups
    assert int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]) != 0
    assert int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16) == 0
    # Started after the database was set up and the models were up (llama-review was
    # restarted by the kill test, so its start is not the boot's).
    # Unit states come over D-Bus: the collector must have read them.
    assert "unit state not collected" not in m.succeed("journalctl -u ai-sysadmin.service --no-pager -o cat")
    starts = {
        u: int(m.get_unit_info(u)["ActiveEnterTimestampMonotonic"])
        for u in ["ai-sysadmin.service", "postgresql-setup.service", "llama-trigger.service", "llama-meta.service"]
    }
    assert all(starts["ai-sysadmin.service"] >= v for v in starts.values())


def test_orchestrator_sees_other_users_processes_and_mounts_under_home(running: tuple[Machine, dict[str, Any]]) -> None:
    """ProtectProc=default and ProtectHome=read-only: the top list holds a process of
    another user, and a full file system under /home is measured (the collector's
    readings, from the orchestrator's own sandbox, in PostgreSQL); and unit states are
    read over D-Bus (a static user: dbus-daemon refuses dynamic ones)."""
    m, info = running
    pg = info["ports"]["pg"]
    # setpriv execs python3: $! is the hog's pid.
    hog = m.succeed(
        f"setpriv --reuid=nobody --regid=nogroup --clear-groups python3 -c "
        f"'import time; x = b\"x\" * ({HOG_MB} << 20); time.sleep(600)' >/dev/null 2>&1 & echo $!"
    ).strip()
    try:
        pid = int(hog)
        # setpriv drops to nobody just before it execs python3.
        wait_until(lambda: m.execute(f"stat -c %U /proc/{pid}")[1].strip() == "nobody", 10, "hog runs as nobody")
        total_kb = int(m.succeed("grep MemTotal: /proc/meminfo").split()[1])
        # The hog's share of memory; nothing else named python3 here comes near it.
        share = 0.9 * 100.0 * HOG_MB * 1024 / total_kb

        def reported() -> bool:
            status, rows = m.execute(
                f'sudo -u postgres psql -p {pg} -d ai-sysadmin -tAc "select name, subject, '
                "max(value) from metrics where ts > now() - interval '20 seconds' and "
                "(name in ('proc.mem_percent', 'units.failed') or subject = '/home/full') "
                'group by name, subject"'
            )
            if status != 0:  # not migrated yet
                return False
            got = {
                (r.split("|")[0], r.split("|")[1]): float(r.split("|")[2]) for r in rows.split() if r.count("|") == 2
            }
            hog_seen = any(
                name == "proc.mem_percent" and subject in ("python3", f"python3[{pid}]") and v >= share
                for (name, subject), v in got.items()
            )
            # units.failed: unit states read over D-Bus by the orchestrator's own user.
            return hog_seen and got.get(("disk.used_percent", "/home/full"), 0) >= 99.0 and ("units.failed", "") in got

        wait_until(reported, 90, "hog in the top list and /home/full reported full", poll=1.0)
    finally:
        m.execute(f"kill {hog}" if hog.isdigit() else "true")


def test_stopping_a_model_or_the_database_leaves_the_orchestrator_running(
    running: tuple[Machine, dict[str, Any]],
) -> None:
    """wants + after, not requires: the orchestrator keeps running degraded, and recovers."""
    m, info = running
    unit = "ai-sysadmin.service"
    pid = _main_pid(m, unit)

    def doctor_line(name: str) -> str:
        _status, out = m.execute("ai-sysadmin doctor")  # the admin command, as root
        return next((line for line in out.splitlines() if f"  {name}:" in line), out)

    m.succeed("systemctl stop llama-trigger.service")
    assert m.get_unit_info(unit)["ActiveState"] == "active" and _main_pid(m, unit) == pid
    assert doctor_line("role trigger").startswith("FAIL"), doctor_line("role trigger")
    m.succeed("systemctl stop postgresql.service")
    assert m.get_unit_info(unit)["ActiveState"] == "active" and _main_pid(m, unit) == pid
    assert doctor_line("database").startswith("FAIL")
    m.succeed("systemctl start llama-trigger.service postgresql.target")
    wait_until(lambda: _health(info["ports"]["trigger"]), 120, "llama-trigger healthy again", poll=0.2)
    m.wait_for_unit("postgresql.target", timeout=120)
    assert doctor_line("role trigger").startswith("ok"), doctor_line("role trigger")
    # The same process all along: never stopped, never restarted.
    assert _main_pid(m, unit) == pid and m.get_unit_info(unit)["NRestarts"] == "0"
    # ... and writing to the database again once it is back (metrics every 2 s).
    wait_until(
        lambda: (
            _psql(
                m, info["ports"]["pg"], "select count(*) from metrics where ts > now() - interval '3 seconds'"
            ).strip()
            not in ("", "0")
        ),
        60,
        "metrics written after the database returned",
        poll=1.0,
    )


def test_each_unit_reads_its_own_config(running: tuple[Machine, dict[str, Any]]) -> None:
    """The admin command and the orchestrator load their rendered files inside the container."""
    m, info = running
    out = info["out"]
    assert m.succeed("ai-sysadmin config check").startswith(f"configuration ok ({out['unitConfigs']['admin']['path']})")
    env = m.get_unit_info("ai-sysadmin.service")["Environment"]
    assert f"AI_SYSADMIN_CONFIG={out['unitConfigs']['orchestrator']['path']}" in env
    key = m.succeed("stat -c '%U %a %s' /var/lib/ai-sysadmin-executor/approval-key").split()
    assert key[:2] == ["root", "600"] and int(key[2]) > 40


def test_api_unit(running: tuple[Machine, dict[str, Any]]) -> None:
    m, info = running
    m.wait_for_unit("ai-sysadmin-api.service", timeout=60)
    port = info["ports"]["api"]
    wait_until(
        lambda: f"127.0.0.1:{port}" in subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout,
        60,
        "API listening",
        poll=0.2,
    )
    assert f"0.0.0.0:{port}" not in subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    pid = _main_pid(m, "ai-sysadmin-api.service")
    # LimitNOFILE=65536 reached systemd (its default soft limit is 1,024), and the process
    # runs with soft == hard (it raises its own soft limit too).  The hard limit it got is
    # min(65536, this container's own), which here may be lower than 65536.
    show = m.succeed("systemctl show -p LimitNOFILE -p LimitNOFILESoft ai-sysadmin-api.service").split()
    assert show == ["LimitNOFILE=65536", "LimitNOFILESoft=65536"], show

    def open_files(p: str) -> list[int]:
        line = next(ln for ln in m.succeed(f"cat /proc/{p}/limits").splitlines() if ln.startswith("Max open files"))
        return [int(v) for v in line.split()[3:5]]

    assert open_files(pid) == [min(65536, open_files("1")[1])] * 2
    uid = m.succeed(f"stat -c %u /proc/{pid}").strip()
    assert m.succeed(f"getent passwd {uid}").split(":")[0] == "ai-sysadmin-api"
    # Its investigation tools read the journal: the journal group, as the orchestrator.
    groups = next(line for line in m.succeed(f"cat /proc/{pid}/status").splitlines() if line.startswith("Groups:"))
    assert m.succeed("getent group systemd-journal").split(":")[2] in groups.split()[1:]


def test_executor_unit(running: tuple[Machine, dict[str, Any]]) -> None:
    """root, but no capability, no new privileges, and no network of its own (PrivateNetwork=)."""
    m, _ = running
    m.wait_for_unit("ai-sysadmin-executor.service", timeout=60)
    pid = _main_pid(m, "ai-sysadmin-executor.service")
    status = m.succeed(f"cat /proc/{pid}/status")
    assert next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1] == "0"
    assert int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16) == 0
    assert "NoNewPrivs:\t1" in status
    assert m.succeed(f"readlink /proc/{pid}/ns/net") != m.succeed("readlink /proc/1/ns/net")
    # Its own configuration names the approval key it was given, and nothing else secret.
    env = m.get_unit_info("ai-sysadmin-executor.service")["Environment"]
    assert "-ai-sysadmin-executor.json" in env
