"""services.ai-sysadmin.preflight installed through `system.preSwitchChecks`, run the way
switch-to-configuration runs it, its exit status stopping the switch.

module.nix is rendered by Nix (nix-instantiate) with the nixpkgs STAND-IN, whose
nixos/modules/pre-switch-check.nix mirrors nixpkgs' (the fragment in a subshell, its
failure exiting 1, the program under errexit/nounset/pipefail).  The program runs with
the host's bash; the rendered fragment runs the real `ai-sysadmin preflight` (this
checkout) against generations in a real test-local Nix store.  `switch_to_configuration`
below is a STAND-IN for the part of nixpkgs' switch-to-configuration-ng that runs the
check (src/main.rs, `do_pre_switch_check` and its caller in `fn main`): unless
NIXOS_NO_CHECK=1 it runs the check program with the new system and the verb, and a
non-zero status ends the switch before anything is activated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rig.paths import nix_tool
from rig.require import need
from tests.nix.cases import base
from tests.nix.nixtools import render
from tests.preflight.conftest import Generations

REPO = Path(__file__).resolve().parents[2]


def _launcher(root: Path) -> dict[str, Any]:
    """The package's two console scripts (pyproject.toml), running this checkout."""
    (root / "ai/bin").mkdir(parents=True, exist_ok=True)
    for name, module in (("ai-sysadmin", "ai_sysadmin"), ("ai-sysadmin-preflight", "ai_sysadmin.commands.preflight")):
        launcher = root / "ai/bin" / name
        launcher.write_text(f'#!/bin/sh\nexport PYTHONPATH={REPO}\nexec {sys.executable} -m {module} "$@"\n')
        launcher.chmod(0o755)
    return {"__package": str(root / "ai"), "name": "ai-sysadmin"}


def installed_check(tmp: Path, gens: Generations, current: Path, **preflight: Any) -> tuple[Path, dict[str, Any]]:
    """Render the module with preflight on; install the pre-switch-checks program."""
    if nix_tool("nix-instantiate") is None:
        need("nix-instantiate not installed (run scripts/provision-nix.sh)")
    nix_prefix = str(Path(gens.store.nix).resolve().parent.parent)
    cfg = base(
        package=_launcher(tmp),
        preflight={"enable": True, **preflight},
        settings={"actions": {"current_system": str(current)}},
    )
    out = render(
        cfg, pkgs={"bash": {"__package": "/usr", "name": "bash"}, "nix": {"__package": nix_prefix, "name": "nix"}}
    )
    assert out["assertions"] == [], out["assertions"]
    program = tmp / "pre-switch-checks"
    program.write_text(out["preSwitch"]["text"])
    program.chmod(0o755)
    return program, out


def switch_to_configuration(
    check: Path, toplevel: str, action: str, current: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """STAND-IN for switch-to-configuration's pre-switch step, then the 'activation'
    (pointing the current-system link at the new generation)."""
    if env.get("NIXOS_NO_CHECK") != "1":
        r = subprocess.run([str(check), toplevel, action], capture_output=True, text=True, timeout=120, env=env)
        if r.returncode != 0:
            return subprocess.CompletedProcess(r.args, 1, r.stdout, r.stderr + "Pre-switch checks failed\n")
    tmp_link = current.with_name(current.name + ".new")
    os.symlink(toplevel, tmp_link)
    os.replace(tmp_link, current)
    return subprocess.CompletedProcess([toplevel, action], 0, "", "")


@pytest.fixture()
def current(tmp_path: Path, generations: Generations) -> Path:
    link = tmp_path / "current-system"
    os.symlink(generations.gen1, link)
    return link


def test_block_verdict_stops_the_switch(tmp_path: Path, generations: Generations, current: Path) -> None:
    check, out = installed_check(tmp_path, generations, current)
    fragment = out["preSwitch"]["checks"]["ai-sysadmin-preflight"]
    assert out["unitConfigs"]["admin"]["path"] in fragment  # the host's configuration: its protected units
    env = generations.store.full_env()

    r = switch_to_configuration(check, generations.block, "switch", current, env)
    assert r.returncode == 1, r.stderr
    assert "user alice is no longer declared" in r.stderr  # the report (nixpkgs sends a fragment's output to stderr)
    assert "Pre-switch check 'ai-sysadmin-preflight' failed" in r.stderr
    assert "NIXOS_NO_CHECK=1" in r.stderr
    assert os.readlink(current) == generations.gen1  # nothing switched

    r = switch_to_configuration(check, generations.warn, "switch", current, env)  # warn passes blockOn=block
    assert r.returncode == 0, r.stderr
    assert os.readlink(current) == generations.warn


def test_nixos_no_check_overrides_once(tmp_path: Path, generations: Generations, current: Path) -> None:
    check, _ = installed_check(tmp_path, generations, current)
    r = switch_to_configuration(
        check, generations.block, "switch", current, {**generations.store.full_env(), "NIXOS_NO_CHECK": "1"}
    )
    assert r.returncode == 0 and os.readlink(current) == generations.block


@pytest.mark.parametrize(
    "block_on, new, switched",
    [
        ("warn", "warn", False),
        ("warn", "ok", True),
        ("never", "block", True),
    ],
)
def test_block_on(
    tmp_path: Path, generations: Generations, current: Path, block_on: str, new: str, switched: bool
) -> None:
    check, _out = installed_check(tmp_path, generations, current, blockOn=block_on)
    target = getattr(generations, new)
    r = switch_to_configuration(check, target, "switch", current, generations.store.full_env())
    assert (r.returncode == 0) is switched, (r.stdout, r.stderr)
    assert os.readlink(current) == (target if switched else generations.gen1)


def test_unknown_verb_is_judged_as_switch(tmp_path: Path, generations: Generations, current: Path) -> None:
    """A verb this preflight does not know (a future switch-to-configuration) is judged as
    a switch, not refused as a usage error."""
    check, _ = installed_check(tmp_path, generations, current)
    r = switch_to_configuration(check, generations.block, "future-verb", current, generations.store.full_env())
    assert r.returncode == 1 and "preflight switch: BLOCK" in r.stderr
