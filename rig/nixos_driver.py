"""A STAND-IN for the NixOS test driver: runs a VM test's own `testScript` in systemd-nspawn.

The real driver (nixos/lib/test-driver in nixpkgs) boots a QEMU VM per node and gives
the script one `Machine` object per node.  No VM and no nixpkgs exist here, so this
driver renders each node of `nix/tests/<name>.nix` with the project's nixpkgs stand-in
(nix/checks/render-test.nix), boots a Debian root per node with `systemd-nspawn --boot`
(own network namespace, so each node has its own ports and firewall), installs the
node's rendered units, /etc files and system commands, and runs the same test script
against it with the same machine API: `start_all`, `wait_for_unit`,
`wait_for_open_port`, `succeed`, `fail`, `execute`, `wait_until_succeeds`, ...

The rendered packages point at real programs: the provisioned llama-server, this
checkout's Python package (a launcher over the test venv), Debian's PostgreSQL 15,
coreutils and iptables.  What differs from a NixOS VM (Debian userland under the units,
no TimescaleDB build, a Linux kernel shared with the host) is listed in docs/nixos.md.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import site
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from rig.net import wait_until
from rig.nspawn import Container, nspawn_root
from rig.paths import PartMissing, read_env_file, rig_paths

REPO = Path(__file__).resolve().parents[1]
RENDER_TEST = REPO / "nix" / "checks" / "render-test.nix"
RENDER = REPO / "nix" / "checks" / "render.nix"
DEFAULT_TIMEOUT = 900.0  # the NixOS driver's default for every wait_*
# Debian's PostgreSQL in the nspawn root (scripts/provision-nix.sh installs postgresql-15).
DEBIAN_PG = "/usr/lib/postgresql/15"
# Packages the NixOS units name, served by the Debian root's /usr.
USR_PACKAGES = (
    "bash",
    "coreutils",
    "findutils",
    "gnugrep",
    "gnused",
    "systemd",
    "iptables",
    "curl",
    "jq",
    "nix",
    "util-linux",
    "procps",
)


def _nix_instantiate() -> str:
    d = read_env_file("nix.env").get("AI_SYSADMIN_NIX_BIN")
    tool = str(Path(d) / "nix-instantiate") if d else shutil.which("nix-instantiate")
    if not tool or not Path(tool).exists():
        raise PartMissing("nix-instantiate not installed (run scripts/provision-nix.sh)")
    return tool


def nix_eval(expr_file: Path, args: dict[str, str], timeout: float = 300) -> Any:
    """nix-instantiate --eval --strict --json, writing builtins.toFile results to the store."""
    argv = [_nix_instantiate(), "--read-write-mode", "--eval", "--strict", "--json", str(expr_file)]
    for k, v in args.items():
        argv += ["--argstr", k, v]
    env = {**os.environ, "NIX_CONFIG": "build-users-group =\nwarn-dirty = false"}
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"evaluating {expr_file.name}: {r.stderr.strip()}")
    return json.loads(r.stdout)


def _site_packages() -> Path:
    for p in site.getsitepackages():
        if Path(p, "aiohttp").exists():
            return Path(p)
    raise PartMissing("no site-packages with the project's dependencies (run under the provisioned venv)")


class RigPackages:
    """Real programs behind the package options, in a directory bind-mounted into every node."""

    def __init__(self) -> None:
        paths = rig_paths()
        self.llama = paths.need("llama_server")
        self.model_file = paths.need("model")
        self.root = nspawn_root()
        self.dir = Path(f"/run/ai-sysadmin-rig-{uuid.uuid4().hex[:8]}")
        self.model = self.dir / "model.gguf"

    def prepare(self) -> RigPackages:
        d = self.dir
        (d / "llama/bin").mkdir(parents=True)
        shutil.copy(self.llama, d / "llama/bin/llama-server")
        self.model.touch()
        for sub in ("ai/bin", "ai/site-packages", "ai/src"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        launcher = d / "ai/bin/ai-sysadmin"
        launcher.write_text(
            f'#!/bin/sh\nexport PYTHONPATH={d}/ai/src:{d}/ai/site-packages\nexec /usr/bin/python3 -m ai_sysadmin "$@"\n'
        )
        for p in [d, *d.rglob("*")]:
            p.chmod(0o755 if p.is_dir() or p.name in ("llama-server", "ai-sysadmin") else 0o644)
        return self

    def binds_ro(self) -> list[tuple[str, str]]:
        # The store holds every rendered unit script and configuration file.
        return [
            ("/nix/store", "/nix/store"),
            (str(self.dir), str(self.dir)),
            (str(self.model_file), str(self.model)),
            (str(_site_packages()), str(self.dir / "ai/site-packages")),
            (str(REPO), str(self.dir / "ai/src")),
        ]

    def package(self) -> dict[str, Any]:
        return {"__package": str(self.dir / "ai"), "name": "ai-sysadmin"}

    def overrides(self) -> dict[str, Any]:
        pg = {"__package": DEBIAN_PG, "name": "postgresql", "version": "15"}
        out: dict[str, Any] = {n: {"__package": "/usr", "name": n} for n in USR_PACKAGES}
        out.update(
            {
                "llama-cpp": {"__package": str(self.dir / "llama"), "name": "llama-cpp"},
                "postgresql": pg,
                "postgresql_16": pg,
                "postgresql_17": pg,
                "fetchurl": {"__fetchurl": str(self.model)},
            }
        )
        return out

    # Debian has no TimescaleDB build: nodes run plain PostgreSQL (the "none" edition).
    NODE_MODULE: ClassVar[dict[str, Any]] = {"services": {"ai-sysadmin": {"database": {"timescaledb": "none"}}}}

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class Machine:
    """One node: the NixOS test driver's Machine API over a booted nspawn container."""

    def __init__(
        self,
        name: str,
        node: dict[str, Any],
        rig: RigPackages,
        log_dir: Path,
        private_network: bool = True,
        extra_binds: list[tuple[str, str]] | None = None,
    ):
        if node.get("assertions"):
            raise RuntimeError(f"node {name}: failed assertions: {node['assertions']}")
        self.name = name
        self.node = node
        self.rig = rig
        self.log_dir = log_dir
        self.container = Container(
            rig.root,
            log_dir / f"{name}-nspawn.log",
            binds_ro=rig.binds_ro() + (extra_binds or []),
            private_network=private_network,
            name=name,
        )
        self.booted = False
        bins = [f"{p}/bin" for p in node.get("systemPackages", []) if Path(p).is_absolute()]
        self.path = ":".join(["/usr/local/sbin", "/usr/local/bin", *bins, "/usr/sbin", "/usr/bin", "/sbin", "/bin"])

    # ------------------------------------------------------------ boot
    def start(self) -> None:
        if self.booted:
            return
        if not self.container.private_network and "firewall.service" in self.node["units"]:
            # Its rules would land in the host's tables.
            raise RuntimeError(f"{self.name}: a firewall needs a private network (networking.firewall.enable = false)")
        self.container.start()
        self.booted = True
        self._same_boot_id()
        self._install()
        wanted = self._wanted_units()
        if wanted:
            r = self.container.run(["systemctl", "start", "--no-block", *wanted], env=self._env())
            if r.returncode != 0:
                raise RuntimeError(f"{self.name}: starting {wanted}: {r.stderr}")

    def _same_boot_id(self) -> None:
        """systemd-nspawn gives the container its own boot id, but a unit with
        ProtectKernelTunables= sees the kernel's: `journalctl --boot` in such a unit
        would find no entry.  On a VM the two are one; here the container is given the
        kernel's id (nspawn's over-mounts removed) and journald restarted, so new
        entries carry it."""
        kernel_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        r = self.container.sh(
            "for i in 1 2 3 4; do umount /proc/sys/kernel/random/boot_id 2>/dev/null || break; done; "
            "systemctl restart systemd-journald && cat /proc/sys/kernel/random/boot_id"
        )
        if r.returncode != 0 or r.stdout.strip() != kernel_id:
            raise RuntimeError(f"{self.name}: boot id: {r.stdout} {r.stderr}")

    def _install(self) -> None:
        c = self.container
        # The Debian root's own units of the same names (postgresql.service) were started
        # at boot; the node's units replace them.
        c.run(["systemctl", "stop", *self.node["units"]])
        # users.users / users.groups: what NixOS' activation creates.
        for group in self.node.get("groups", []):
            c.sh(f"getent group {shlex.quote(group)} >/dev/null || groupadd --system {shlex.quote(group)}")
        for user, spec in self.node.get("users", {}).items():
            r = c.sh(
                f"getent passwd {shlex.quote(user)} >/dev/null || useradd --system --no-create-home "
                f"--shell /usr/sbin/nologin --gid {shlex.quote(spec['group'])} {shlex.quote(user)}"
            )
            if r.returncode != 0:
                raise RuntimeError(f"{self.name}: creating user {user}: {r.stderr}")
        for unit, text in self.node["units"].items():
            c.write(f"/etc/systemd/system/{unit}", text)
        for unit, target in self._install_links():
            r = c.sh(
                f"mkdir -p /etc/systemd/system/{target}.wants && "
                f"ln -sf /etc/systemd/system/{unit} /etc/systemd/system/{target}.wants/{unit}"
            )
            assert r.returncode == 0, r.stderr
        for name, entry in self.node.get("etc", {}).items():
            if entry.get("text") is not None:
                c.write(f"/etc/{name}", entry["text"])
            elif entry.get("source"):
                assert (
                    c.sh(f'mkdir -p "$(dirname /etc/{name})" && ln -sf {entry["source"]} /etc/{name}').returncode == 0
                )
        for script in self.node.get("binScripts", []):
            c.write(f"/usr/local/bin/{script['name']}", script["text"])
            assert c.run(["chmod", "0755", f"/usr/local/bin/{script['name']}"]).returncode == 0
        r = c.run(["systemctl", "daemon-reload"])
        if r.returncode != 0:
            raise RuntimeError(f"{self.name}: daemon-reload: {r.stderr}")

    def _install_links(self) -> list[tuple[str, str]]:
        out = []
        for unit, text in self.node["units"].items():
            for line in text.splitlines():
                if line.startswith(("WantedBy=", "RequiredBy=")):
                    out += [(unit, t) for t in line.split("=", 1)[1].split()]
        return out

    def _wanted_units(self) -> list[str]:
        # What NixOS starts at boot: the units its targets want.
        return sorted({u for u, t in self._install_links() if t in ("multi-user.target", "sysinit.target")})

    def _env(self) -> dict[str, str]:
        return {"PATH": self.path, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}

    # ------------------------------------------------------------ commands
    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> tuple[int, str]:
        self.start()
        try:
            r = self.container.run(["/bin/bash", "-c", command], timeout=timeout or DEFAULT_TIMEOUT, env=self._env())
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self.name}: command timed out after {timeout}s: {command}") from None
        self._log(f"$ {command}\n{r.stdout}{r.stderr}(exit {r.returncode})\n")
        return r.returncode, r.stdout

    def succeed(self, *commands: str, timeout: float | None = None) -> str:
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status != 0:
                raise RuntimeError(f"{self.name}: command `{command}` failed (exit code {status}):\n{out}")
            output += out
        return output

    def fail(self, *commands: str, timeout: float | None = None) -> str:
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status == 0:
                raise RuntimeError(f"{self.name}: command `{command}` unexpectedly succeeded")
            output += out
        return output

    def wait_until_succeeds(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        result: dict[str, str] = {}

        def ok() -> bool:
            status, out = self.execute(command, timeout=timeout)
            result["out"] = out
            return status == 0

        wait_until(ok, timeout, f"{self.name}: `{command}`", poll=1.0)
        return result["out"]

    def wait_until_fails(self, command: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        result: dict[str, str] = {}

        def failed() -> bool:
            status, out = self.execute(command, timeout=timeout)
            result["out"] = out
            return status != 0

        wait_until(failed, timeout, f"{self.name}: `{command}` to fail", poll=1.0)
        return result["out"]

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        assert user is None, "user units are not supported by the stand-in driver"
        return self.execute(f"systemctl {q}")

    def get_unit_info(self, unit: str) -> dict[str, str]:
        status, out = self.systemctl(f"--no-pager show {shlex.quote(unit)}")
        if status != 0:
            raise RuntimeError(f"{self.name}: retrieving systemctl info for unit {unit} failed")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        """As the NixOS driver: until active; an error once it failed or is inactive with no job."""

        def active() -> bool:
            info = self.get_unit_info(unit)
            state = info["ActiveState"]
            if state == "failed":
                raise RuntimeError(f'{self.name}: unit "{unit}" reached state "{state}"\n{self._journal(unit)}')
            if state == "inactive":
                _status, jobs = self.systemctl("list-jobs --full 2>&1")
                if "No jobs" in jobs and self.get_unit_info(unit)["ActiveState"] == state:
                    raise RuntimeError(f'{self.name}: unit "{unit}" is inactive and there are no pending jobs')
            return state == "active"

        wait_until(active, timeout, f"{self.name}: unit {unit} active", poll=0.5)

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.wait_until_succeeds(f"bash -c 'exec 3<>/dev/tcp/{addr}/{port}'", timeout=timeout)

    def wait_for_closed_port(self, port: int, addr: str = "localhost", timeout: float = DEFAULT_TIMEOUT) -> None:
        self.wait_until_fails(f"bash -c 'exec 3<>/dev/tcp/{addr}/{port}'", timeout=timeout)

    def wait_for_file(self, filename: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.wait_until_succeeds(f"test -e {shlex.quote(filename)}", timeout=timeout)

    def start_job(self, unit: str) -> tuple[int, str]:
        return self.systemctl(f"start {shlex.quote(unit)}")

    def stop_job(self, unit: str) -> tuple[int, str]:
        return self.systemctl(f"stop {shlex.quote(unit)}")

    def log(self, msg: str) -> None:
        self._log(f"# {msg}\n")

    def shutdown(self) -> None:
        self.container.stop()
        self.booted = False

    crash = shutdown

    def _journal(self, unit: str) -> str:
        return self.container.run(["journalctl", "-u", unit, "-n", "40", "--no-pager"]).stdout

    def _log(self, text: str) -> None:
        with open(self.log_dir / f"{self.name}-commands.log", "a") as f:
            f.write(text)


def render_test(name: str, rig: RigPackages) -> dict[str, Any]:
    case = {"pkgs": rig.overrides(), "package": rig.package(), "nodeModule": RigPackages.NODE_MODULE}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(case, f)
    try:
        return nix_eval(RENDER_TEST, {"test": name, "caseFile": f.name})
    finally:
        os.unlink(f.name)


def render_config(config: dict[str, Any], rig: RigPackages) -> dict[str, Any]:
    """One NixOS configuration (module.nix) rendered with the rig's real packages."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"config": config, "pkgs": rig.overrides()}, f)
    try:
        return nix_eval(RENDER, {"caseFile": f.name})
    finally:
        os.unlink(f.name)


@contextlib.contextmanager
def machines_for(nodes: dict[str, dict[str, Any]], rig: RigPackages, log_dir: Path) -> Iterator[dict[str, Machine]]:
    ms = {name: Machine(name, node, rig, log_dir) for name, node in sorted(nodes.items())}
    try:
        yield ms
    finally:
        for m in ms.values():
            m.shutdown()


def run_test_script(script: str, machines: dict[str, Machine]) -> None:
    """exec the test script with the driver's globals, as nixos/lib/test-driver does."""

    def start_all() -> None:
        for m in machines.values():
            m.start()

    @contextlib.contextmanager
    def subtest(name: str) -> Iterator[None]:
        for m in machines.values():
            m.log(f"subtest: {name}")
        yield

    def retry(fn: Callable[[bool], bool], timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not fn(time.monotonic() > deadline):
            if time.monotonic() > deadline:
                raise TimeoutError("action timed out")
            time.sleep(1)

    env: dict[str, Any] = {
        "start_all": start_all,
        "subtest": subtest,
        "retry": retry,
        "machines": list(machines.values()),
        "log": print,
        **machines,
    }
    exec(compile(script, "testScript", "exec"), env)


def run_vm_test(name: str, log_dir: Path) -> dict[str, Any]:
    """Render nix/tests/<name>.nix, boot its nodes, run its testScript; returns the rendering."""
    rig = RigPackages().prepare()
    try:
        rendered = render_test(name, rig)
        with machines_for(rendered["nodes"], rig, log_dir) as ms:
            run_test_script(rendered["testScript"], ms)
        return rendered
    finally:
        rig.cleanup()
