"""Running the Nix tooling (Debian nix-bin) against module.nix and the nixpkgs STAND-IN.

The stand-in (nix/stand-in/nixpkgs) is a small project-written re-implementation of the
parts of nixpkgs the module uses; nothing here is nixpkgs.  See docs/nixos.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from rig.paths import nix_tool

REPO = Path(__file__).resolve().parents[2]
STAND_IN = REPO / "nix" / "stand-in" / "nixpkgs"
RENDER = REPO / "nix" / "checks" / "render.nix"
FLAKES = ["--extra-experimental-features", "nix-command flakes"]


def run_env() -> dict[str, str]:
    # Single-user store as root, no build users; evaluation never builds.
    return {**os.environ, "NIX_CONFIG": "build-users-group =\nwarn-dirty = false"}


def run(argv: list[str], timeout: float = 300, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=run_env(), **kw)


class EvalError(Exception):
    pass


@functools.cache
def _render_cached(case_json: str, lib_path: str | None = None) -> str:
    tool = nix_tool("nix-instantiate")
    assert tool
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(case_json)
    try:
        # --read-write-mode: the rendered files (builtins.toFile) are written to the store,
        # so a unit's AI_SYSADMIN_CONFIG path holds exactly what it will read.
        argv = [tool, "--read-write-mode", "--eval", "--strict", "--json", str(RENDER), "--argstr", "caseFile", f.name]
        if lib_path:
            argv += ["--arg", "libPath", lib_path]
        r = run(argv)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise EvalError(r.stderr)
    return r.stdout


def render(config: dict[str, Any], pkgs: dict[str, Any] | None = None, lib_path: str | None = None) -> dict[str, Any]:
    """Evaluate module.nix with `config` (NixOS options as JSON) and return what it renders.

    `pkgs` overrides stand-in packages (JSON package markers); `lib_path` evaluates with
    another nixpkgs `lib` (the real one) instead of the stand-in's.
    """
    case = {"config": config, "pkgs": pkgs or {}}
    return json.loads(_render_cached(json.dumps(case, sort_keys=True), lib_path))


def case_id(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:10]
