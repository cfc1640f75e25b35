"""nixos_generations and nixos_generation_diff: the system profile's generations and what changed.

Paths come from the configuration only (`meta.system_profile`, `meta.current_system`,
`meta.booted_system`); the model chooses generation numbers, never paths.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj
from ai_sysadmin.meta.tools.runner import Runner

GEN_LINE = re.compile(r"^\s*(\d+)\s+(\S+\s+\S+)\s*(\(current\))?\s*$")
NIX_COMMAND = ["--extra-experimental-features", "nix-command"]


def _link(profile: str, number: int) -> str:
    return f"{profile}-{number}-link"


def _target(path: str) -> str | None:
    try:
        return os.path.realpath(path) if os.path.lexists(path) else None
    except OSError:
        return None


def _store_args(cfg: Config) -> list[str]:
    return ["--store", cfg.meta.nix_store] if cfg.meta.nix_store else []


async def live_generations(cfg: Any, runner: Any) -> dict[str, Any]:
    """The system profile's generations on this machine (nix-env --list-generations, the profile links)."""
    m = cfg.meta
    if not os.path.lexists(m.system_profile):
        raise ToolError(f"no system profile at {m.system_profile} (is this NixOS?)")
    r = await runner.run(["nix-env", *_store_args(cfg), "--list-generations", "-p", m.system_profile])
    if r.timed_out or r.returncode != 0:
        raise ToolError(f"nix-env --list-generations: {(r.stderr.strip() or 'timed out')[:300]}")
    current, booted = _target(m.current_system), _target(m.booted_system)
    gens = []
    for line in r.stdout.splitlines():
        g = GEN_LINE.match(line)
        if not g:
            continue
        number = int(g.group(1))
        path = _target(_link(m.system_profile, number))
        gens.append(
            {
                "generation": number,
                "date": g.group(2),
                "current_profile": bool(g.group(3)),
                "store_path": path,
                "running": path is not None and path == current,
                "booted": path is not None and path == booted,
            }
        )
    return {"generations": gens, "current_system": current, "booted_system": booted}


async def live_diff(cfg: Config, runner: Runner, first: int, second: int) -> str:
    """nix store diff-closures between two generations of this machine's system profile."""
    paths = []
    for field_name, number in (("from", first), ("to", second)):
        target = _target(_link(cfg.meta.system_profile, number))
        if target is None:
            raise ToolError(f"invalid argument {field_name}: generation {number} does not exist")
        paths.append(target)
    r = await runner.run(
        ["nix", *NIX_COMMAND, *_store_args(cfg), "store", "diff-closures", *paths], timeout=max(runner.timeout, 60)
    )
    if r.timed_out:
        raise ToolError("nix store diff-closures timed out")
    if r.returncode != 0:
        raise ToolError(f"nix store diff-closures: {(r.stderr.strip() or 'failed')[-300:]}")
    return r.stdout


def tools(ctx: ToolContext) -> list[Tool]:
    async def generations(args: dict[str, Any]) -> ToolOutput:
        facts = await ctx.host.generations()
        gens, current, booted = facts["generations"], facts.get("current_system"), facts.get("booted_system")
        lines = [
            f"{g['generation']} {g['date']} {g.get('store_path') or '?'}"
            + "".join(f" ({w})" for w in ("current_profile", "running", "booted") if g.get(w))
            for g in gens
        ]
        lines.append(f"current system: {current or 'unknown'}; booted system: {booted or 'unknown'}")
        latest = gens[-1]["generation"] if gens else None
        return ToolOutput(
            "\n".join(lines),
            {"generations": gens, "current_system": current, "booted_system": booted},
            f"{len(gens)} generations, latest {latest}",
        )

    async def diff(args: dict[str, Any]) -> ToolOutput:
        out = await ctx.host.generation_diff(args["from"], args["to"])
        text = out.strip() or "no differences in package versions or sizes"
        changed = len([ln for ln in out.splitlines() if ln.strip()])
        return ToolOutput(
            f"generation {args['from']} -> {args['to']}:\n{text}", {"changes": changed}, f"{changed} changed packages"
        )

    gen = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
    return [
        Tool(
            "nixos_generations",
            "The system profile's generations with dates and store paths, and which one "
            "is running and which was booted.",
            obj({}),
            generations,
        ),
        Tool(
            "nixos_generation_diff",
            "What changed between two system generations (package versions and sizes, nix store diff-closures).",
            obj({"from": gen, "to": gen}, ("from", "to")),
            diff,
            narrow_hint="compare two adjacent generations",
        ),
    ]
