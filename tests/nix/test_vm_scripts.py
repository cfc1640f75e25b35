"""The NixOS VM tests' own test scripts, run by the stand-in driver against systemd-nspawn.

rig/nixos_driver.py renders each node of nix/tests/<name>.nix with the nixpkgs stand-in,
boots it (a Debian root with real systemd, the rendered units, Debian's PostgreSQL, the
real llama-server and this checkout's package) and executes the test's `testScript`
unchanged with the NixOS driver's machine API.  A NixOS VM (`nix build
.#checks.x86_64-linux.vm-basic`) remains the reference; docs/nixos.md lists the
differences.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rig.nixos_driver import Machine, RigPackages, machines_for, render_test, run_test_script
from rig.paths import PartMissing
from rig.require import need

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rig(nix_instantiate: str) -> Iterator[RigPackages]:
    try:
        r = RigPackages()
    except PartMissing as exc:
        need(str(exc))
    r.prepare()
    try:
        yield r
    finally:
        r.cleanup()


def test_basic_script(rig: RigPackages, tmp_path: Path) -> None:
    rendered = render_test("basic", rig)
    assert set(rendered["nodes"]) == {"machine", "exposed"}
    with machines_for(rendered["nodes"], rig, tmp_path) as ms:
        run_test_script(rendered["testScript"], ms)
        # The script ran against real units: what it asserted is there to see.
        assert ms["machine"].get_unit_info("ai-sysadmin.service")["ActiveState"] == "active"
        assert "40083" in ms["exposed"].succeed("iptables -S nixos-fw")


@pytest.fixture(scope="module")
def trigger_nodes(
    rig: RigPackages, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], dict[str, Machine]]]:
    rendered = render_test("trigger", rig)
    with machines_for(rendered["nodes"], rig, tmp_path_factory.mktemp("vm-trigger")) as ms:
        yield rendered, ms


def test_trigger_script(trigger_nodes: tuple[dict[str, Any], dict[str, Machine]]) -> None:
    rendered, ms = trigger_nodes
    run_test_script(rendered["testScript"], ms)
    rows = ms["machine"].succeed(
        "sudo -u postgres psql -d ai-sysadmin -tAc \"select severity from triggers where unit = 'doomed.service'\""
    )
    assert rows.split(), rows


def test_driver_reports_failures(trigger_nodes: tuple[dict[str, Any], dict[str, Machine]]) -> None:
    """The driver is only worth its passes if it fails the way the NixOS one does."""
    _, ms = trigger_nodes
    m = ms["machine"]
    with pytest.raises(RuntimeError, match=r"command `exit 3` failed \(exit code 3\)"):
        m.succeed("exit 3")
    with pytest.raises(RuntimeError, match="unexpectedly succeeded"):
        m.fail("true")
    assert m.execute("echo out; exit 4") == (4, "out\n")
    with pytest.raises(RuntimeError, match=r'unit "doomed.service" reached state "failed"'):
        m.wait_for_unit("doomed.service", timeout=30)
    with pytest.raises(TimeoutError):
        m.wait_until_succeeds("test -e /nonexistent", timeout=2)
    m.wait_for_open_port(40080, timeout=60)
