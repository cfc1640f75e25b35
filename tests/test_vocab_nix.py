"""The NixOS module's enums are the Python vocabulary: a level the module accepts, the service accepts.

Parses module.nix's text (no Nix evaluation): each `name = lib.mkOption { type = ...enum [ ... ] ...`.
Every enum of the module is either a configuration key, compared with its Python
Literal here, or one the module alone interprets (listed, so a new enum must be placed).
"""

from __future__ import annotations

import re
from pathlib import Path

from ai_sysadmin.vocab import AUTONOMY_LEVELS, FLEET_ROLES, LOG_LEVELS

MODULE = Path(__file__).resolve().parent.parent / "module.nix"

# Option name in module.nix -> the Python vocabulary the service validates it against.
SHARED = {
    "autonomyLevel": AUTONOMY_LEVELS,
    "autonomy_level": AUTONOMY_LEVELS,
    "log_level": LOG_LEVELS,
    "role": FLEET_ROLES,  # services.ai-sysadmin.fleet.role -> fleet.role
}
# Enums that never reach the service's JSON (the module turns them into units and packages).
MODULE_ONLY = {"acceleration", "timescaledb", "backend", "blockOn"}

_OPTION = re.compile(r"(?P<name>[A-Za-z_][\w.-]*)\s*=\s*lib\.mkOption\s*\{(?P<body>.*?)\n\s*\};", re.S)
_ENUM = re.compile(r"lib\.types\.enum\s*\[(?P<items>[^\]]*)\]")


def module_enums() -> list[tuple[str, tuple[str, ...]]]:
    text = MODULE.read_text(encoding="utf-8")
    found = []
    for opt in _OPTION.finditer(text):
        enum = _ENUM.search(opt["body"].split("description")[0])
        if enum:
            name = opt["name"].rsplit(".", 1)[-1]
            found.append((name, tuple(re.findall(r'"([^"]*)"', enum["items"]))))
    return found


def test_the_parser_finds_the_module_enums() -> None:
    names = [n for n, _ in module_enums()]
    assert {"autonomyLevel", "autonomy_level", "log_level"} <= set(names), names


def test_module_enums_equal_the_python_vocabulary() -> None:
    for name, values in module_enums():
        assert name in SHARED or name in MODULE_ONLY, f"module.nix enum {name!r} is neither shared nor module-only"
        if name in SHARED:
            assert values == SHARED[name], (name, values, SHARED[name])
