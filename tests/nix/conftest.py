"""Fixtures for the NixOS-side checks: each needs Debian's nix-bin (scripts/provision-nix.sh)."""

from __future__ import annotations

import pytest

from rig.paths import nix_tool
from rig.require import need


@pytest.fixture(scope="session")
def nix_instantiate() -> str:
    tool = nix_tool("nix-instantiate")
    if tool is None:
        need("nix-instantiate not installed (run scripts/provision-nix.sh)")
    return tool  # type: ignore[return-value]


@pytest.fixture(scope="session")
def nix() -> str:
    tool = nix_tool("nix")
    if tool is None:
        need("nix not installed (run scripts/provision-nix.sh)")
    return tool  # type: ignore[return-value]
