"""The CLI on bad input and bad state: one line naming the problem and the fix, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rig.postgres import PgCluster


def run(tmp_path: Path, config: dict[str, Any], *argv: str, where: str = "after") -> subprocess.CompletedProcess[str]:
    f = tmp_path / "config.json"
    f.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **config}))
    opt = ["--config", str(f)]
    args = [*argv, *opt] if where == "after" else [*opt, *argv]
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        cwd=Path(__file__).resolve().parents[2],
    )


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(("WARNING", "INFO"))]
    assert lines, r.stderr
    return lines[-1]


def test_config_after_the_subcommand_works_for_every_command(tmp_path: Path) -> None:
    cfg = {"log_level": "warning", "trigger": {"window_seconds": 77}}
    after = run(tmp_path, cfg, "config", "show")
    before = run(tmp_path, cfg, "config", "show", where="before")
    assert after.returncode == before.returncode == 0, after.stderr
    assert json.loads(after.stdout) == json.loads(before.stdout)
    assert json.loads(after.stdout)["trigger"]["window_seconds"] == 77
    from ai_sysadmin.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, p in sub.choices.items():  # every registered subcommand, including later ones
        assert "--config" in p._option_string_actions, name
    assert parser.parse_args(["doctor", "--config", "/x.json"]).config == "/x.json"
    assert parser.parse_args(["--config", "/y.json", "doctor"]).config == "/y.json"


def test_unmigrated_database_and_database_down(tmp_path: Path, private_pg_cluster: PgCluster) -> None:
    private_pg_cluster.create_database("fresh")
    db = private_pg_cluster.database_config("fresh")
    r = run(tmp_path, {"database": db}, "incidents")
    assert r.returncode == 1 and "not migrated" in one_line(r) and "start the service once" in one_line(r)
    private_pg_cluster.stop()
    r = run(tmp_path, {"database": db}, "incidents", "show", "3")
    assert r.returncode == 1 and "cannot reach PostgreSQL" in one_line(r) and "postgresql.service" in one_line(r)


def main_in_process(tmp_path: Path, capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """ai_sysadmin.cli.main as the console script calls it (argparse errors exit 2)."""
    from ai_sysadmin.cli import main

    (tmp_path / "c.json").write_text(json.dumps({"state_dir": str(tmp_path / "state")}))
    try:
        rc = main([*argv, "--config", str(tmp_path / "c.json")])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.strip().splitlines()[-1] if err.strip() else ""


def test_bad_limits_and_unreadable_inputs(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for limit in ("0", "-3", "ten"):
        rc, line = main_in_process(tmp_path, capsys, "incidents", "--limit", limit)
        assert rc == 2 and "argument --limit" in line, line
    rc, line = main_in_process(tmp_path, capsys, "replay", str(tmp_path / "journal"), "--window", "0")
    assert rc == 2 and "--window: must be at least 1" in line
    rc, line = main_in_process(tmp_path, capsys, "replay", str(tmp_path / "no-such.journal"))
    assert rc == 2 and "no such file or directory" in line
    rc, line = main_in_process(tmp_path, capsys, "replay", "/dev/null/x")
    assert rc == 2 and "/dev/null/x" in line
    secret = tmp_path / "unreadable.journal"
    secret.write_bytes(b"x")
    secret.chmod(0)
    (tmp_path / "empty.json").write_text("{}")
    # As root: without the capabilities that let root read any file, as the service user would be.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "ai_sysadmin", "replay", str(secret), "--config", str(tmp_path / "empty.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "permission denied" in one_line(r)
    (tmp_path / "broken.json").write_text("{not json")
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "doctor", "--config", str(tmp_path / "broken.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "invalid JSON at line 1" in r.stderr and "Traceback" not in r.stderr
