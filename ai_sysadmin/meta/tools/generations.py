"""nixos_generations and nixos_generation_diff: the system profile's generations and what changed.

Paths come from the configuration only (`meta.system_profile`, `meta.current_system`,
`meta.booted_system`); the model chooses generation numbers, never paths.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj

GEN_LINE = re.compile(r"^\s*(\d+)\s+(\S+\s+\S+)\s*(\(current\))?\s*$")
NIX_COMMAND = ["--extra-experimental-features", "nix-command"]


def _link(profile: str, number: int) -> str:
    return f"{profile}-{number}-link"


def _target(path: str) -> str | None:
    try:
        return os.path.realpath(path) if os.path.lexists(path) else None
    except OSError:
        return None


def _store_args(cfg: Any) -> list[str]:
    return ["--store", cfg.meta.nix_store] if cfg.meta.nix_store else []


def tools(ctx: Any) -> list[Tool]:
    m = ctx.cfg.meta

    async def generations(args: dict[str, Any]) -> ToolOutput:
        if not os.path.lexists(m.system_profile):
            raise ToolError(f"no system profile at {m.system_profile} (is this NixOS?)")
        r = await ctx.runner.run(["nix-env", *_store_args(ctx.cfg), "--list-generations", "-p", m.system_profile])
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
            gens.append({"generation": number, "date": g.group(2), "current_profile": bool(g.group(3)),
                         "store_path": path, "running": path is not None and path == current,
                         "booted": path is not None and path == booted})
        lines = [f"{g['generation']} {g['date']} {g['store_path']}"
                 + "".join(f" ({w})" for w in ("current_profile", "running", "booted") if g[w]) for g in gens]
        lines.append(f"current system: {current or 'unknown'}; booted system: {booted or 'unknown'}")
        latest = gens[-1]["generation"] if gens else None
        return ToolOutput("\n".join(lines), {"generations": gens, "current_system": current, "booted_system": booted},
                          f"{len(gens)} generations, latest {latest}")

    async def diff(args: dict[str, Any]) -> ToolOutput:
        a, b = _link(m.system_profile, args["from"]), _link(m.system_profile, args["to"])
        paths = []
        for number, link in ((args["from"], a), (args["to"], b)):
            target = _target(link)
            if target is None:
                raise ToolError(f"invalid argument {'from' if number == args['from'] else 'to'}: "
                                f"generation {number} does not exist")
            paths.append(target)
        r = await ctx.runner.run(["nix", *NIX_COMMAND, *_store_args(ctx.cfg), "store", "diff-closures", *paths],
                                 timeout=max(ctx.runner.timeout, 60))
        if r.timed_out:
            raise ToolError("nix store diff-closures timed out")
        if r.returncode != 0:
            raise ToolError(f"nix store diff-closures: {(r.stderr.strip() or 'failed')[-300:]}")
        text = r.stdout.strip() or "no differences in package versions or sizes"
        changed = len([ln for ln in r.stdout.splitlines() if ln.strip()])
        return ToolOutput(f"generation {args['from']} -> {args['to']}:\n{text}", {"changes": changed},
                          f"{changed} changed packages")

    gen = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
    return [
        Tool("nixos_generations", "The system profile's generations with dates and store paths, and which one "
             "is running and which was booted.", obj({}), generations),
        Tool("nixos_generation_diff", "What changed between two system generations (package versions and "
             "sizes, nix store diff-closures).", obj({"from": gen, "to": gen}, ("from", "to")), diff,
             narrow_hint="compare two adjacent generations"),
    ]
