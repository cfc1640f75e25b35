"""`ai-sysadmin eval` as an admin runs it: table/json, resume, compare, and bad input named, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ai_sysadmin.eval.scenario import shipped_dir
from rig.net import free_port
from tests.conftest import REPO


def cli(tmp_path: Path, *args: str, config: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), **(config or {})}))
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "eval", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "AI_SYSADMIN_CONFIG": str(cfg), "PYTHONPATH": str(REPO)},
    )
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_json_output_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    r = cli(
        tmp_path,
        "--no-model",
        "--autonomy",
        "auto-full",
        "--only",
        "crash-loop-myapp",
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    s = doc["scenarios"]["crash-loop-myapp"]["score"]
    assert s["status"] == "ok" and s["right"] is True and s["unsafe"] == 0
    assert doc["run"]["autonomy"] == "auto-full" and doc["run"]["no_model"] is True
    assert "eval: [1/1] crash-loop-myapp" in r.stderr  # the progress line
    assert json.loads(out.read_text()) == doc  # the file is what was printed
    # A rerun over more scenarios keeps the finished one and runs only the new one (an interrupted run resumes).
    r2 = cli(
        tmp_path,
        "--no-model",
        "--autonomy",
        "auto-full",
        "--only",
        "crash-loop-myapp",
        "--only",
        "sudo-denied-probe",
        "--out",
        str(out),
    )
    assert r2.returncode == 0, r2.stderr
    assert "crash-loop-myapp: done earlier" in r2.stderr and "sudo-denied-probe: 1 incident(s)" in r2.stderr
    assert set(json.loads(out.read_text())["scenarios"]) == {"crash-loop-myapp", "sudo-denied-probe"}
    assert "crash-loop-myapp" in r2.stdout and "right" in r2.stdout and "injection success" in r2.stdout
    r4 = cli(tmp_path, "--no-model", "--autonomy", "auto-full", "--only", "crash-loop-myap", "--out", str(out))
    assert r4.returncode == 2 and "--only crash-loop-myap: no such scenario or family" in r4.stderr
    # Other settings never mix into the same file.
    r3 = cli(tmp_path, "--no-model", "--autonomy", "suggest", "--out", str(out))
    assert r3.returncode == 2 and "autonomy" in r3.stderr and "--fresh" in r3.stderr


def test_compare(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    # A key stricter than the shipped one: only reset-failed is acceptable, so the rules' restart is wrong.
    d = tmp_path / "scenarios"
    d.mkdir()
    strict = json.loads((shipped_dir() / "crash-loop-myapp.json").read_text())
    strict["key"]["acceptable"] = [a_ for a_ in strict["key"]["acceptable"] if a_["action"] == "reset_failed_unit"]
    (d / "crash-loop-myapp.json").write_text(json.dumps(strict))
    for path, level in ((a, "auto-full"), (b, "suggest")):
        r = cli(tmp_path, "--no-model", "--autonomy", level, "--scenarios", str(d), "--out", str(path))
        assert r.returncode == 0, r.stderr
    r = cli(tmp_path, "--compare", str(a), str(b))
    assert r.returncode == 0, r.stderr
    # At auto-full the wrong restart is executed (unsafe); under suggest it waits for a person.
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("crash-loop-myapp"))
    assert line.split()[1:] == ["unsafe", "1", "0"], r.stdout
    assert "A: scenarios 1" in r.stdout and "B: scenarios 1" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    r = cli(tmp_path, "--compare", str(a), str(bad))
    assert r.returncode == 2 and "bad.json" in r.stderr and "not an ai-sysadmin eval results file" in r.stderr


def test_broken_scenario_is_named_and_skipped(tmp_path: Path) -> None:
    d = tmp_path / "scenarios"
    d.mkdir()
    shutil.copy(shipped_dir() / "ssh-brute-force.json", d)
    broken = json.loads((shipped_dir() / "crash-loop-myapp.json").read_text())
    broken["name"] = "broken"
    broken["key"]["acceptable"][0]["action"] = "reboot_host"
    (d / "broken.json").write_text(json.dumps(broken))
    (d / "garbage.json").write_text("{not json")
    r = cli(tmp_path, "--no-model", "--scenarios", str(d), "--out", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "broken.json: key.acceptable[0].action: must be a catalog action" in r.stderr
    assert "garbage.json: not valid JSON" in r.stderr
    assert "ssh-brute-force: 1 incident(s)" in r.stderr
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines() if ln.split()}
    assert "skipped: does not load: broken.json: key.acceptable[0].action" in rows["broken"]
    assert "scenarios 3 (scored 1, skipped 2)" in r.stdout


def test_model_down_is_named_and_skipped(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    roles = {r: {"url": f"http://127.0.0.1:{port}", "model": r, "timeout": 5} for r in ("trigger", "review")}
    r = cli(tmp_path, "--only", "crash-loop-myapp", "--out", str(tmp_path / "r.json"), config={"roles": roles})
    assert r.returncode == 1, r.stderr
    assert f"model at http://127.0.0.1:{port} is unavailable" in r.stderr
    assert "skipped:" in r.stdout and "scenarios 1 (scored 0, skipped 1)" in r.stdout
