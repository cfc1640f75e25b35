"""docs/nixos.md's option reference is generated from module.nix and must be current."""

from __future__ import annotations

import subprocess
import sys

from tests.nix.nixtools import REPO, run_env


def test_option_reference_is_current(nix_instantiate: str) -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "nix/checks/gen-options-doc.py"), "--check", "--nix-instantiate", nix_instantiate],
        capture_output=True,
        text=True,
        env=run_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
