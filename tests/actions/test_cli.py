"""The command line: catalog output, and one clear line (never a traceback) for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.actions.conftest import RolesDB

REPO = Path(__file__).resolve().parents[2]


def _cli(cfg: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ai_sysadmin", *(("--config", str(cfg)) if cfg else ()), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_catalog_json_lists_every_action_with_its_schema() -> None:
    r = _cli(None, "actions", "catalog", "--format", "json")
    assert r.returncode == 0, r.stderr
    items = {a["id"]: a for a in json.loads(r.stdout)}
    assert items["rollback_generation"]["risk"] == "high"
    assert items["restart_unit"]["parameters"]["required"] == ["unit"]
    assert all(a["verification"] for a in items.values())


def test_cli_errors_are_one_line(tmp_path: Path, roles_db: RolesDB) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path),
                "autonomy_level": "suggest",
                "database": roles_db.section(roles_db.orchestrator),
                "actions": {"approval_key_file": str(tmp_path / "missing.key")},
            }
        )
    )
    r = _cli(cfg, "actions", "propose", "restart_unit", "--params", "{bad", "--reason", "x")
    assert r.returncode == 2 and "--params is not JSON" in r.stderr
    r = _cli(cfg, "actions", "propose", "restart_unit", "--params", '{"unit": "a;b"}', "--reason", "x")
    out = json.loads(r.stdout)
    assert (
        r.returncode == 1
        and out["decision"] == "refuse"
        and out["errors"] == ["params.unit: not allowed (wrong form; see the parameter's schema)"]
    )
    assert "Traceback" not in r.stderr
