"""`systemd-analyze verify` and `systemd-analyze security --offline=true` on the rendered units.

The units are rendered with the package options pointing at real files (the provisioned
llama-server build and a launcher for the Python package), so verify also checks that
every ExecStart= resolves.  Exposure scores are printed (pytest -s) and written to
$AI_SYSADMIN_CACHE/nix-security-scores.json.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rig.paths import cache_dir, rig_paths
from rig.require import need
from tests.nix.cases import _merge, base
from tests.nix.nixtools import render

MAX_EXPOSURE = 2.5
OUR_UNITS = (
    "llama-trigger.service",
    "llama-review.service",
    "llama-meta.service",
    "llama-embed.service",
    "ai-sysadmin.service",
    "ai-sysadmin-api.service",
    "ai-sysadmin-executor.service",
    "ai-sysadmin-approval-key.service",
)
# The shell of the unit scripts (`script =`) must exist for verify: the host's.
PKGS = {
    n: {"__package": "/usr", "name": n}
    for n in ("bash", "coreutils", "findutils", "gnugrep", "gnused", "systemd", "nix")
}


def _packages(root: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    llama_bin = rig_paths().llama_server
    if llama_bin is None or not llama_bin.exists():
        need("llama-server not provisioned (run scripts/provision.sh)")
    (root / "llama/bin").mkdir(parents=True)
    (root / "llama/bin/llama-server").symlink_to(llama_bin)
    (root / "ai/bin").mkdir(parents=True)
    launcher = root / "ai/bin/ai-sysadmin"
    launcher.write_text('#!/bin/sh\nexec python3 -m ai_sysadmin "$@"\n')
    launcher.chmod(0o755)
    return (
        {"__package": str(root / "llama"), "name": "llama-cpp"},
        {"__package": str(root / "ai"), "name": "ai-sysadmin"},
    )


VERIFY_CASES = {
    "cpu-api": {
        "llamacpp": {"acceleration": "cpu", "embed": {"enable": True, "model": "/var/lib/models/e.gguf"}},
        "api": {"enable": True},
    },
    "cuda": {"llamacpp": {"acceleration": "cuda"}},
    "rocm": {"llamacpp": {"acceleration": "rocm"}},
    "vulkan": {"llamacpp": {"acceleration": "vulkan"}},
    "api-exposed": {"api": {"enable": True, "host": "0.0.0.0", "apiKeyFile": "/run/keys/k", "openFirewall": True}},
    "local-db": {"database": {"createLocally": True, "url": None}},
}

SCORES: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module")
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        need("systemd-analyze not installed")
    return tool  # type: ignore[return-value]


@pytest.fixture(scope="module", params=sorted(VERIFY_CASES))
def units(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, nix_instantiate: str
) -> tuple[str, Path, list[str]]:
    root = tmp_path_factory.mktemp(f"units-{request.param}")
    llama_pkg, ai_pkg = _packages(root / "pkgs")
    # A remote database keeps postgresql.service (a stand-in unit) out of the dependencies.
    cfg = base(package=ai_pkg, database={"createLocally": False, "url": "postgresql:///ai?host=/run/postgresql"})
    _merge(cfg["services"]["ai-sysadmin"], VERIFY_CASES[request.param])
    cfg["services"]["ai-sysadmin"]["llamacpp"]["package"] = llama_pkg
    out = render(cfg, pkgs=PKGS)
    assert out["assertions"] == []
    unit_dir = root / "units"
    unit_dir.mkdir()
    names = []
    for name, text in out["units"].items():
        if name in OUR_UNITS:
            (unit_dir / name).write_text(text)
            names.append(name)
    return request.param, unit_dir, sorted(names)


def test_verify(analyze: str, units: tuple[str, Path, list[str]]) -> None:
    case, unit_dir, names = units
    r = subprocess.run(
        [analyze, "verify", "--man=no", *(str(unit_dir / n) for n in names)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # verify reports problems on stderr, often with exit status 0.
    assert r.stderr.strip() == "", f"{case}: {r.stderr}"
    assert r.returncode == 0


def test_security_exposure(analyze: str, units: tuple[str, Path, list[str]]) -> None:
    case, unit_dir, names = units
    scores: dict[str, float] = {}
    for n in names:
        r = subprocess.run(
            [analyze, "security", "--offline=true", "--no-pager", str(unit_dir / n)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
        assert m, r.stdout + r.stderr
        scores[n] = float(m.group(1))
    SCORES[case] = scores
    print(f"\nsystemd-analyze security ({case}): " + ", ".join(f"{k} {v}" for k, v in scores.items()))
    out = cache_dir() / "nix-security-scores.json"
    try:
        old = json.loads(out.read_text()) if out.exists() else {}
        old[case] = scores
        out.write_text(json.dumps(old, indent=1, sort_keys=True))
    except OSError:
        pass
    worst = {k: v for k, v in scores.items() if v > MAX_EXPOSURE}
    assert not worst, f"{case}: exposure above {MAX_EXPOSURE}: {worst}"
