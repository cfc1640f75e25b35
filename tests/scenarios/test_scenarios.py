"""The scenario suite: each fault as data (journal entries + metric snapshot + answer key),
replayed through L1 -> incidents -> L2 -> L3 -> policy with the deterministic parts only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ai_sysadmin.actions.types import DECISIONS
from rig.scenarios import by_kind, load, replay_review, scenarios, write_export
from tests.conftest import REPO, make_config

SEVERITY_ORDER = ("info", "low", "medium", "high", "critical")


def test_suite_covers_the_issue() -> None:
    names = set(scenarios())
    required = {
        "oom-protected-unit",
        "crash-loop",
        "segfault",
        "disk-full",
        "nixos-activation-failed",
        "nix-store-corruption",
        "time-sync-lost",
        "certificate-expiry",
        "ssh-brute-force",
        "kernel-hung-task",
        "disk-io-errors",
        "link-down",
    }
    assert required <= names and len(names) >= 12


@pytest.mark.parametrize("name", scenarios())
async def test_scenario_deterministic(name: str, tmp_path: Path) -> None:
    sc = load(name)
    exp = sc["expect"]
    src, snap = write_export(sc, tmp_path)
    lines, err = await replay_review(make_config(tmp_path), src, snap)
    k = by_kind(lines)
    assert "nothing was executed" in err
    incidents = k["incident"]
    assert len(incidents) == exp["incidents"], [i["title"] for i in incidents]
    main = max(incidents, key=lambda i: SEVERITY_ORDER.index(i["severity"]))
    assert main["category"] == exp["category"]
    assert main["severity"] == exp["severity"]
    # Every trigger line belongs to exactly the incident whose trigger_ids list it.
    trigger_ids = {t["id"] for t in k["trigger"]}
    linked = [tid for i in incidents for tid in i["trigger_ids"]]
    assert sorted(linked) == sorted(trigger_ids)
    for t in k["trigger"]:
        assert t["id"] in next(i["trigger_ids"] for i in incidents if i["id"] == t["incident"])
    props = k["proposal"]
    assert props, "the deterministic candidates are always proposed without a model"
    for p in props:
        assert p["source"] == "rules" and p["decision"] in DECISIONS and p["risk"] in ("low", "medium", "high")
        assert p["incident"] in {i["id"] for i in incidents}
        assert p["decision"] == "queue", p  # default autonomy `suggest`: everything waits for a person
    proposed = {p["action"] for p in props if p["incident"] == main["id"]}
    assert set(exp["candidates"]) <= proposed, proposed
    for action in exp["forbidden"]:
        assert all(p["decision"] == "refuse" for p in props if p["action"] == action), action
    advice = [a for f in k["finding"] for a in f["advice"]]
    for needle in exp.get("advice", []):
        assert any(needle in a for a in advice), (needle, advice)
    for f in k["finding"]:
        assert f["layer"] == "rules" and f["incident"] in {i["id"] for i in incidents}


def test_cli_through_review_auto_safe(tmp_path: Path) -> None:
    """The real command line: auto-safe runs low risk (dry run), still never a protected unit."""
    sc = load("crash-loop")
    src, _ = write_export(sc, tmp_path)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state")}))
    env = {**os.environ, "AI_SYSADMIN_CONFIG": str(cfg)}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ai_sysadmin",
            "replay",
            str(src),
            "--through",
            "review",
            "--no-model",
            "--autonomy",
            "auto-safe",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    kinds = {x["kind"] for x in lines}
    assert kinds == {"trigger", "incident", "finding", "proposal"}
    props = [x for x in lines if x["kind"] == "proposal"]
    restart = next(p for p in props if p["action"] == "restart_unit")
    assert restart["decision"] == "execute" and restart["params"] == {"unit": "myapp.service"}
    assert set(restart) >= {"action", "params", "risk", "source", "decision", "reason", "incident"}
    # The unit hit its start limit: `systemctl restart` is refused until reset-failed ran.
    order = [p["action"] for p in props]
    assert order.index("reset_failed_unit") < order.index("restart_unit"), order
    inc = next(x for x in lines if x["kind"] == "incident")
    assert set(inc) >= {"id", "category", "severity", "title", "trigger_ids"}
    assert "Traceback" not in r.stderr


def test_bad_snapshot_is_named(tmp_path: Path) -> None:
    sc = load("disk-full")
    src, snap = write_export(sc, tmp_path)
    assert snap is not None
    snap.write_text(json.dumps({"samples": [{"name": "disk.used_percent", "value": "full"}]}))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state")}))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ai_sysadmin",
            "replay",
            str(src),
            "--through",
            "review",
            "--no-model",
            "--metrics",
            str(snap),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AI_SYSADMIN_CONFIG": str(cfg)},
        cwd=REPO,
    )
    assert r.returncode == 2 and "samples[0]" in r.stderr and "Traceback" not in r.stderr
