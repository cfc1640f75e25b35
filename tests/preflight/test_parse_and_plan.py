"""The parts of preflight that need no store: diff-closures' line format (as
nix's src/nix/diff-closures.cc prints it, colour included), unit-file semantics, usage
errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ai_sysadmin.preflight import closure, risks, units
from ai_sysadmin.preflight.closure import ClosureDiff, PackageChange

REPO = Path(__file__).resolve().parents[2]


def test_diff_closures_lines() -> None:
    text = (
        "firefox: 120.0 \u2192 121.0, \x1b[31;1m+1234.5 KiB\x1b[0m\n"
        "zstd: \u2205 \u2192 1.5.6\n"
        "glibc-locales: \x1b[32;1m-8200.0 KiB\x1b[0m\n"
        "foo: 1.0, 1.1 \u2192 \u03b5, \x1b[31;1m+9.0 KiB\x1b[0m\n"
        "warning: something nix said\n"
    )
    assert closure.parse(text) == (
        PackageChange("firefox", ("120.0",), ("121.0",), round(1234.5 * 1024)),
        PackageChange("zstd", (), ("1.5.6",), None),
        PackageChange("glibc-locales", (), (), -8200 * 1024),
        PackageChange("foo", ("1.0", "1.1"), ("",), 9 * 1024),
    )
    assert [c.kind for c in closure.parse(text)] == ["changed", "added", "size", "changed"]


def test_unit_semantics(tmp_path: Path) -> None:
    a, b = tmp_path / "a.service", tmp_path / "b.service"
    a.write_text("[Unit]\nDescription=x\n[Service]\nExecStart=/bin/x\nEnvironment=A=1\n[Install]\nWantedBy=a\n")
    b.write_text(
        "[Unit]\nDescription=y\nX-Reload-Triggers=/nix/store/r\n[Service]\nExecStart=/bin/x\n"
        "Environment=A=1\n[Install]\nWantedBy=b\n"
    )
    assert units.compare(units.parse_unit(a), units.parse_unit(b)) is units.Comparison.RELOAD
    # A drop-in that resets and redefines ExecStart changes it: restart.
    (tmp_path / "b.service.d").mkdir()
    (tmp_path / "b.service.d/override.conf").write_text("[Service]\nExecStart=\nExecStart=/bin/y \\\n  --flag\n")
    info = units.parse_unit(b)
    assert info["Service"]["ExecStart"] == ["/bin/y  --flag"]
    assert units.compare(units.parse_unit(a), info) is units.Comparison.RESTART


def test_usage_error_is_exit_3_in_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "preflight", "/x", "--action", "reboot"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1 and "--action" in r.stderr


def test_store_space_flag() -> None:
    tight = ClosureDiff((), added_bytes=300 << 20, net_bytes=200 << 20, store_free_bytes=100 << 20)
    (flag,) = risks.store_space(tight)
    assert flag.severity is risks.Severity.WARN and flag.evidence == {"free_bytes": 100 << 20, "added_bytes": 300 << 20}
    assert risks.store_space(ClosureDiff((), 300 << 20, 0, 400 << 20)) == []
    assert risks.store_space(ClosureDiff((), 0, -(5 << 20), 1)) == []  # a shrinking closure needs no room
