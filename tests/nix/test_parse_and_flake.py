"""Every .nix file parses; the flake evaluates (`nix flake check`) with the nixpkgs STAND-IN."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.nix.nixtools import FLAKES, REPO, STAND_IN, run

NIX_FILES = sorted(p for p in REPO.rglob("*.nix") if ".git" not in p.parts)


def test_nix_files_exist() -> None:
    assert REPO / "flake.nix" in NIX_FILES and REPO / "module.nix" in NIX_FILES


@pytest.mark.parametrize("path", NIX_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_parses(nix_instantiate: str, path: Path) -> None:
    r = run([nix_instantiate, "--parse", str(path)], timeout=60)
    assert r.returncode == 0, r.stderr


def _flake_copy(tmp: Path) -> Path:
    """The flake's own files (a path: flake sees untracked files too, unlike git+file)."""
    dst = tmp / "flake"
    dst.mkdir()
    for name in ("flake.nix", "module.nix", "pyproject.toml"):
        shutil.copy(REPO / name, dst / name)
    shutil.copytree(REPO / "nix", dst / "nix")
    shutil.copytree(REPO / "ai_sysadmin", dst / "ai_sysadmin", ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _flake_check(nix: str, flake: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [
            nix,
            *FLAKES,
            "flake",
            "check",
            "--no-build",
            "--no-write-lock-file",
            "--override-input",
            "nixpkgs",
            f"path:{STAND_IN}",
            f"path:{flake}",
        ],
        timeout=300,
    )


def test_flake_check_with_stand_in(nix: str, tmp_path: Path) -> None:
    r = _flake_check(nix, _flake_copy(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr.lower(), r.stderr


def test_flake_check_catches_unknown_option(nix: str, tmp_path: Path) -> None:
    flake = _flake_copy(tmp_path)
    text = (flake / "flake.nix").read_text()
    bad = text.replace(
        'cpu = { services.ai-sysadmin.llamacpp.acceleration = "cpu"; };',
        'cpu = { services.ai-sysadmin.llamacpp.accel = "cpu"; };',
    )
    assert bad != text
    (flake / "flake.nix").write_text(bad)
    r = _flake_check(nix, flake)
    assert r.returncode != 0
    assert "services.ai-sysadmin.llamacpp.accel' does not exist" in r.stderr, r.stderr


def test_flake_outputs(nix: str, tmp_path: Path) -> None:
    flake = _flake_copy(tmp_path)
    r = run(
        [
            nix,
            *FLAKES,
            "eval",
            "--json",
            "--no-write-lock-file",
            "--override-input",
            "nixpkgs",
            f"path:{STAND_IN}",
            f"path:{flake}#checks.x86_64-linux",
            "--apply",
            "builtins.attrNames",
        ]
    )
    assert r.returncode == 0, r.stderr
    names = set(__import__("json").loads(r.stdout))
    assert {
        "vm-basic",
        "vm-trigger",
        "package",
        "module-eval-cpu",
        "module-eval-cuda",
        "module-eval-api-exposed",
        "module-eval-timescaledb-tsl",
        "module-eval-timescaledb-none",
        "module-eval-admins-and-protected",
    } <= names, names


def test_flake_check_refuses_unfree_timescaledb(nix: str, tmp_path: Path) -> None:
    """Without its allowUnfreePredicate the TSL case must fail: nothing unfree slips in."""
    flake = _flake_copy(tmp_path)
    text = (flake / "flake.nix").read_text()
    bad = text.replace('nixpkgs.config.allowUnfreePredicate = pkg: lib.getName pkg == "timescaledb";', "")
    assert bad != text
    (flake / "flake.nix").write_text(bad)
    r = _flake_check(nix, flake)
    assert r.returncode != 0
    assert "has an unfree license (‘TSL’), refusing to evaluate" in r.stderr, r.stderr


def test_vm_test_scripts_are_python(nix: str, tmp_path: Path) -> None:
    """The stand-in cannot boot VMs; at least the test scripts must compile."""
    flake = _flake_copy(tmp_path)
    for name in ("vm-basic", "vm-trigger"):
        r = run(
            [
                nix,
                *FLAKES,
                "eval",
                "--raw",
                "--no-write-lock-file",
                "--override-input",
                "nixpkgs",
                f"path:{STAND_IN}",
                f"path:{flake}#checks.x86_64-linux.{name}.testScriptText",
            ]
        )
        assert r.returncode == 0, r.stderr
        compile(r.stdout, f"{name}.testScript", "exec")
