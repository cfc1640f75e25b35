"""`ai-sysadmin preflight` against real Nix: generations built as real store paths in a
test-local store (rig/generation.nix), the real `nix store diff-closures`,
each verdict and its exit status, and bad input as one line with exit status 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.preflight.conftest import Generations

REPO = Path(__file__).resolve().parents[2]


def preflight(gens: Generations, new: str, current: str, *extra: str) -> tuple[int, dict[str, Any] | None, str]:
    """The CLI as an admin (or the pre-switch check) runs it: a process of its own."""
    argv = [
        sys.executable,
        "-m",
        "ai_sysadmin",
        "preflight",
        new,
        "--current",
        current,
        "--nix",
        gens.store.nix,
        "--format",
        "json",
        *extra,
    ]
    r = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**gens.store.full_env(), "PYTHONPATH": str(REPO), "AI_SYSADMIN_CONFIG": ""},
    )
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def units_of(report: dict[str, Any]) -> dict[str, str]:
    return {u["unit"]: u["action"] for u in report["units"]}


def kinds(report: dict[str, Any]) -> dict[str, str]:
    return {f["kind"]: f["severity"] for f in report["flags"]}


def test_switch_plan_follows_switch_to_configuration(generations: Generations) -> None:
    rc, report, err = preflight(generations, generations.warn, generations.gen1)
    assert report is not None, err
    assert units_of(report) == {
        "web.service": "stop-start",  # ExecStart changed: X-StopIfChanged defaults to true
        "sshd.service": "stop-start",
        "dbus.service": "skip",  # X-RestartIfChanged=false
        "reloader.service": "reload",  # X-ReloadIfChanged=true
        "old.service": "stop",  # removed
        "new.service": "start",  # new, wanted by multi-user.target
    }  # quiet.service: only Description changed, which switch-to-configuration ignores
    assert rc == 1 and report["verdict"] == "warn"
    (sshd,) = [f for f in report["flags"] if f["kind"] == "protected-unit-restarted"]
    assert sshd["evidence"]["unit"] == "sshd.service" and sshd["severity"] == "warn"
    assert report["reasons"] == [sshd["message"]]


def test_reboot_needed_names_the_kernel_links(generations: Generations) -> None:
    _, report, err = preflight(generations, generations.warn, generations.gen1)
    assert report is not None, err
    assert report["reboot_needed"] is True
    (flag,) = [f for f in report["flags"] if f["kind"] == "reboot-needed"]
    assert set(flag["evidence"]) == {"kernel", "initrd", "kernel-modules"}
    assert flag["evidence"]["kernel"]["to"].endswith("-linux-6.6.2-bzImage")
    (pid1,) = [f for f in report["flags"] if f["kind"] == "systemd-changed"]
    assert pid1["severity"] == "info" and pid1["evidence"]["to"].endswith("-systemd-256.2")
    _, same, err = preflight(generations, generations.ok, generations.gen1)
    assert same is not None and same["reboot_needed"] is False and "systemd-changed" not in kinds(same), err


def test_closure_diff_is_nix_store_diff_closures_parsed(generations: Generations) -> None:
    _, report, err = preflight(generations, generations.warn, generations.gen1)
    assert report is not None, err
    changes = {c["package"]: c for c in report["closure"]["changes"]}
    hello = changes["hello"]
    assert (hello["from"], hello["to"], hello["kind"]) == (["1.0"], ["1.1"], "changed")
    assert hello["size_delta_bytes"] == 32 * 1024  # 16 KiB -> 48 KiB of content
    assert "tool" not in changes  # same version, same size
    assert changes["linux"]["from"] and changes["linux"]["to"]
    assert report["closure"]["added_bytes"] >= 32 * 1024
    assert report["closure"]["store_free_bytes"] > 0


def test_removed_person_blocks(generations: Generations) -> None:
    rc, report, err = preflight(generations, generations.block, generations.gen1)
    assert report is not None, err
    assert rc == 2 and report["verdict"] == "block"
    flags = {
        (f["kind"], f["evidence"].get("user") or f["evidence"].get("group")): f["severity"]
        for f in report["flags"]
        if f["kind"] in ("user-removed", "group-removed")
    }
    assert flags == {("user-removed", "alice"): "block", ("group-removed", "alice"): "warn"}
    (flag,) = [f for f in report["flags"] if f["kind"] == "user-removed"]
    assert flag["evidence"]["current"].endswith("-users-groups.json")
    assert report["units"] == []


def test_ordinary_change_is_ok(generations: Generations) -> None:
    rc, report, err = preflight(generations, generations.ok, generations.gen1)
    assert report is not None, err
    assert (rc, report["verdict"], report["reasons"]) == (0, "ok", [])
    assert units_of(report) == {"web.service": "stop-start"}


def test_boot_changes_no_unit_now(generations: Generations) -> None:
    rc, report, err = preflight(generations, generations.warn, generations.gen1, "--action", "boot")
    assert report is not None, err
    assert (rc, report["verdict"], report["units"]) == (0, "ok", [])
    assert report["reboot_needed"] is True


def test_dry_activate_reports_but_decides_nothing(generations: Generations) -> None:
    rc, report, err = preflight(generations, generations.block, generations.gen1, "--action", "dry-activate")
    assert report is not None, err
    assert rc == 0 and report["verdict"] == "ok"
    assert kinds(report)["user-removed"] == "info"


def test_protected_list_comes_from_the_config(generations: Generations, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"protected_units": ["web.service"], "protected_units_replace": True}))
    rc, report, err = preflight(generations, generations.ok, generations.gen1, "--config", str(cfg))
    assert report is not None, err
    assert rc == 1 and [f["evidence"]["unit"] for f in report["flags"] if f["kind"].startswith("protected")] == [
        "web.service"
    ]


def test_protected_unit_removed_blocks(generations: Generations, tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"protected_units": ["old.service"]}))  # added to the defaults
    rc, report, err = preflight(generations, generations.warn, generations.gen1, "--config", str(cfg))
    assert report is not None, err
    assert rc == 2 and report["verdict"] == "block"
    (flag,) = [f for f in report["flags"] if f["kind"] == "protected-unit-removed"]
    assert flag["evidence"] == {"unit": "old.service", "action": "stop", "reason": "removed from the new system"}
    assert report["reasons"] == [flag["message"]]  # the sshd restart (warn) is outweighed, not listed


def test_first_activation_has_nothing_to_compare(generations: Generations, tmp_path: Path) -> None:
    rc, report, err = preflight(generations, generations.gen1, str(tmp_path / "no-current-system"))
    assert report is not None, err
    assert rc == 0 and report["current"] is None


@pytest.mark.parametrize("what", ["not-a-system", "dangling-profile", "missing-new"])
def test_bad_input_is_one_line_and_exit_3(generations: Generations, tmp_path: Path, what: str) -> None:
    new, current = generations.warn, generations.gen1
    if what == "not-a-system":
        new = os.path.realpath(Path(generations.gen1) / "kernel")  # a store path, but a file
        expect = "not a directory"
    elif what == "dangling-profile":
        current = str(tmp_path / "current-system")
        os.symlink(tmp_path / "gone", current)
        expect = f"current system {current}: not a directory"
    else:
        new = str(Path(generations.gen1).parent / ("0" * 32 + "-nixos-system-none"))
        expect = "not a directory"
    rc, report, err = preflight(generations, new, current)
    assert rc == 3 and report is None
    assert len(err.strip().splitlines()) == 1 and expect in err and "Traceback" not in err


def test_directory_that_is_no_system(generations: Generations) -> None:
    empty = Path(generations.store.base) / "not-a-system"
    empty.mkdir(exist_ok=True)
    rc, _, err = preflight(generations, str(empty), generations.gen1)
    assert rc == 3 and "not a NixOS system path" in err and len(err.strip().splitlines()) == 1
