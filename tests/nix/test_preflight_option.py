"""services.ai-sysadmin.preflight renders nixpkgs' `system.preSwitchChecks` fragment, with
the nixpkgs stand-in's lib and with the real nixpkgs lib (they must agree).

The option is nixpkgs' nixos/modules/system/activation/pre-switch-check.nix (the
stand-in's nix/stand-in/nixpkgs/nixos/modules/pre-switch-check.nix mirrors it): a
fragment gets the new system as $1 and the verb as $2.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.nix.cases import base
from tests.nix.nixtools import render
from tests.nix.test_stand_in import real_lib


@pytest.fixture(params=["stand-in", "nixpkgs"])
def lib_path(request: pytest.FixtureRequest, nix_instantiate: str) -> str | None:
    return None if request.param == "stand-in" else str(real_lib())


def _render(lib_path: str | None, **preflight: Any) -> dict[str, Any]:
    out = render(base(preflight=preflight) if preflight else base(), lib_path=lib_path)
    assert out["assertions"] == [], out["assertions"]
    return out


@pytest.mark.parametrize("block_on, fails_from", [(None, 2), ("block", 2), ("warn", 1), ("never", 4)])
def test_option_renders_the_check(lib_path: str | None, block_on: str | None, fails_from: int) -> None:
    opts: dict[str, Any] = {"enable": True} | ({"blockOn": block_on} if block_on else {})
    out = _render(lib_path, **opts)
    fragment = out["preSwitch"]["checks"]["ai-sysadmin-preflight"]
    admin = out["unitConfigs"]["admin"]["path"]
    assert f'/bin/ai-sysadmin-preflight --config {admin} "$1" --action "$action"' in fragment
    assert '"${2:-switch}"' in fragment and "--nix /nix/store/" in fragment
    assert f'if [ "$rc" -ge {fails_from} ]; then' in fragment
    # The program nixpkgs builds from the fragments runs this one and fails with it.
    text = out["preSwitch"]["text"]
    assert text.startswith("#!") and "set -o errexit" in text and "set -o nounset" in text
    assert fragment.strip().splitlines()[0] in text and "Pre-switch check 'ai-sysadmin-preflight' failed" in text
    assert out["preSwitch"]["script"].endswith("/bin/pre-switch-checks")


def test_off_by_default(lib_path: str | None) -> None:
    assert _render(lib_path)["preSwitch"]["checks"] == {}


def test_stand_in_and_real_lib_agree(nix_instantiate: str) -> None:
    cfg = base(preflight={"enable": True, "blockOn": "warn"})
    assert render(cfg, lib_path=str(real_lib())) == render(cfg)


@pytest.mark.parametrize("model", [None, False, True])
def test_model_option_adds_the_flag(lib_path: str | None, model: bool | None) -> None:
    opts: dict[str, Any] = {"enable": True} | ({} if model is None else {"model": model})
    fragment = _render(lib_path, **opts)["preSwitch"]["checks"]["ai-sysadmin-preflight"]
    call = next(ln for ln in fragment.splitlines() if "--nix " in ln)
    # Off by default: every switch would wait for the model.
    assert call.rstrip().endswith("/bin/nix --model || rc=$?" if model else "/bin/nix || rc=$?"), call
