"""Boot the cached Debian bookworm root with systemd-nspawn and run commands inside it.

The root is built by scripts/provision-nix.sh ($AI_SYSADMIN_CACHE/nix.env names it).
The container boots real systemd (`--boot`) on a volatile overlay so the cached root is
never changed.  By default it shares the host's network namespace (so its loopback
ports are the host's: tests pick free ports with bind 0); `private_network=True` gives
it its own (rig/nixos_driver.py: each VM-test node has its own ports and firewall).
Commands run inside through `nsenter` into the container's PID 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from rig.net import wait_until
from rig.paths import PartMissing, read_env_file
from rig.proc import exit_report, spawn_logged


def nspawn_root() -> Path:
    env = read_env_file("nix.env")
    root = os.environ.get("AI_SYSADMIN_NSPAWN_ROOT") or env.get("AI_SYSADMIN_NSPAWN_ROOT")
    if not root or not (Path(root) / ".complete").exists():
        raise PartMissing("nspawn root not provisioned (run scripts/provision-nix.sh)")
    if not Path("/usr/bin/systemd-nspawn").exists():
        raise PartMissing("systemd-nspawn not installed (Debian systemd-container)")
    if os.geteuid() != 0:
        raise PartMissing("systemd-nspawn needs root")
    return Path(root)


@dataclass
class Container:
    root: Path
    log_path: Path
    binds_ro: list[tuple[str, str]] = field(default_factory=list)
    binds: list[tuple[str, str]] = field(default_factory=list)
    private_network: bool = False
    # `--network-zone=`: its own network namespace, its `host0` on a bridge nspawn makes on
    # the host for every container of the zone (and removes with the last one).
    network_zone: str = ""
    name: str = ""
    proc: subprocess.Popen | None = None
    leader: int | None = None

    def start(self, timeout: float = 120.0) -> Container:
        argv = [
            "systemd-nspawn",
            "--quiet",
            "--keep-unit",
            "--register=no",
            "--boot",
            "--volatile=overlay",
            f"--directory={self.root}",
            "--console=pipe",
            f"--machine=aisys-{os.getpid()}{'-' + self.name if self.name else ''}",
        ]
        argv += [f"--bind-ro={src}:{dst}" for src, dst in self.binds_ro]
        argv += [f"--bind={src}:{dst}" for src, dst in self.binds]
        if self.private_network:
            argv.append("--private-network")
        if self.network_zone:
            argv.append(f"--network-zone={self.network_zone}")
        self.proc = spawn_logged(argv, self.log_path)
        try:
            wait_until(self._find_leader, 30, "container PID 1", alive=self._dead)
            # "degraded" is fine: a minimal root may have a unit that does not apply here.
            wait_until(
                lambda: self.sh("systemctl is-system-running").stdout.strip() in ("running", "degraded"),
                timeout,
                "container boot",
                poll=0.2,
                alive=self._dead,
            )
        except Exception:
            self.stop()
            raise
        return self

    def _dead(self) -> str | None:
        report = exit_report(self.proc, self.log_path, tail=3000)
        return f"systemd-nspawn {report}" if report else None

    def _find_leader(self) -> bool:
        """The container's init: the `systemd` process descending from our nspawn."""
        assert self.proc is not None
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return False
        for child in children:
            try:
                if child.name() == "systemd":
                    self.leader = child.pid
                    return True
            except psutil.NoSuchProcess:
                continue
        return False

    def run(
        self, argv: list[str], timeout: float = 60.0, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert self.leader is not None
        return subprocess.run(
            ["nsenter", "-t", str(self.leader), "-m", "-u", "-i", "-p", "-n", "-C", "--", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            env=env,
        )

    def sh(
        self, script: str, timeout: float = 60.0, input: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.run(["/bin/sh", "-c", script], timeout=timeout, input=input, env=env)

    def write(self, path: str, text: str) -> None:
        r = self.sh(f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", input=text)
        if r.returncode != 0:
            raise RuntimeError(f"writing {path} in the container: {r.stderr}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # SIGTERM to nspawn asks the container's systemd to power off cleanly.
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> Container:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unit_state(c: Container, unit: str) -> str:
    return c.run(["systemctl", "is-active", unit]).stdout.strip()


def main_pid(c: Container, unit: str) -> int:
    return int(c.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip() or 0)


def poll(check, timeout: float, what: str, interval: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not true after {timeout:.0f}s")
        time.sleep(interval)
