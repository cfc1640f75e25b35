"""The investigation tools answering from a shipped scenario (eval.snapshot_host), never from this host."""

from __future__ import annotations

import asyncio
from typing import Any

from ai_sysadmin.config import parse_config
from ai_sysadmin.eval.scenario import load_scenario, shipped_dir
from ai_sysadmin.eval.shelf import RunbookShelf
from ai_sysadmin.eval.snapshot_host import NoCommands, SnapshotHost
from ai_sysadmin.meta.tools import build_toolset
from ai_sysadmin.meta.tools.names import TOOL_NAMES


def _toolset(name: str, tmp_path: Any) -> tuple[Any, SnapshotHost, NoCommands]:
    from ai_sysadmin.review.replay import review_pipeline
    from ai_sysadmin.trigger.replay import run_l1

    cfg = parse_config({"state_dir": str(tmp_path / "state")}, env={})
    sc = load_scenario(shipped_dir() / f"{name}.json")

    async def deterministic_run() -> Any:
        l1 = await run_l1(cfg, str(sc.write_export(tmp_path)), use_model=False, kind="json")
        samples, units = sc.snapshot()
        return await review_pipeline(
            cfg, l1.triggers, use_model=False, autonomy="suggest", samples=samples, units=units
        )

    run = asyncio.run(deterministic_run())
    host = SnapshotHost(
        sc,
        disk_paths=cfg.meta.disk_paths,
        triggers=run.triggers,
        incidents=run.incidents,
        findings=run.result.findings,
        proposals=run.result.proposals,
    )
    runner = NoCommands()
    return build_toolset(cfg, host=host, kb=RunbookShelf(), runner=runner), host, runner


def _call(tools: Any, name: str, args: dict[str, Any]) -> Any:
    return asyncio.run(tools.call(name, args))


def test_every_read_tool_answers_from_the_crash_loop_snapshot(tmp_path: Any) -> None:
    tools, host, runner = _toolset("crash-loop-myapp", tmp_path)
    r = _call(tools, "failed_units", {})
    assert r.ok and r.text.startswith("myapp.service loaded failed failed My application")
    r = _call(tools, "unit_status", {"unit": "myapp.service"})
    assert r.ok and "ActiveState=failed" in r.text and "Result=exit-code" in r.text and "NRestarts=5" in r.text
    r = _call(tools, "unit_status", {"unit": "nginx.service"})  # running: a process of the snapshot
    assert r.ok and "ActiveState=active" in r.text and "MainPID=1502" in r.text
    r = _call(tools, "unit_status", {"unit": "redis.service"})
    assert not r.ok and "not in the host snapshot" in r.text
    r = _call(tools, "unit_dependencies", {"unit": "myapp.service", "reverse": True})
    assert r.ok and r.text == "WantedBy: multi-user.target"
    r = _call(tools, "journal_query", {"unit": "myapp.service", "grep": "config.toml", "lines": 2})
    assert r.ok and r.summary == "2 entries" and "2025-06-15 15:06:4" in r.text and "myapp.service[23" in r.text
    r = _call(tools, "journal_query", {"unit": "myapp.service", "priority": "err", "since": "-1h"})
    assert r.ok and all(" p3: " in line for line in r.text.splitlines())
    assert _call(tools, "journal_query", {"since": "2025-06-16"}).text == "no matching journal entries"
    assert "not a regular expression" in _call(tools, "journal_query", {"grep": "("}).text
    r = _call(tools, "disk_usage", {})
    assert r.ok and r.text == "/ ? size ? used 41.0% free ? inodes 12.0%"
    r = _call(tools, "largest_dirs", {"path": "/var"})
    assert r.ok and r.text.splitlines()[1:] == ["2.1G /var/lib/postgresql", "900.0M /var/log/journal"]
    assert "not under an allowed root" in _call(tools, "largest_dirs", {"path": "/etc"}).text
    r = _call(tools, "top_processes", {"limit": 1})
    assert r.ok and r.text.splitlines()[1] == "1234 ? 2.0 410.0 postgres (unit postgresql.service)"
    r = _call(tools, "metrics_query", {})
    assert r.ok and "disk.used_percent / 1 41 41 41" in r.text and "mem.percent (host) 1 31 31 31" in r.text
    r = _call(tools, "metrics_query", {"name": "disk.used_percent", "subject": "/"})
    assert r.ok and r.summary == "1 points, min 41 max 41 last 41"
    r = _call(tools, "nixos_generations", {})
    assert r.ok and r.text.splitlines()[1] == "42 2025-06-14 09:30 ? (current_profile) (running)"
    r = _call(tools, "trigger_templates", {"unit": "myapp.service"})
    assert r.ok and "unit=myapp.service" in r.text and r.data["evidence_ids"]["trigger"]
    r = _call(tools, "incident_history", {})
    assert r.ok and r.text.startswith("incident 1 [open]") and "myapp.service" in r.text
    r = _call(tools, "incident_history", {"incident_id": 1})
    assert r.ok and "trigger " in r.text and r.data["evidence_ids"]["incident"] == ["1"]
    r = _call(tools, "knowledge_search", {"text": "service crash loop restart"})
    assert r.ok and "runbooks/crash-loop" in r.text
    # Every read tool of the catalog was answered by the snapshot; nothing ran a command.
    asked = set(host.calls)
    assert {
        "failed_units",
        "unit_properties",
        "unit_dependencies",
        "journal",
        "mounts",
        "largest_dirs",
        "processes",
        "metric_series",
        "metric_points",
        "generations",
        "trigger_templates",
        "incidents",
        "incident",
    } <= asked
    assert runner.refused == []
    assert set(TOOL_NAMES) - {"propose_action", "nixos_generation_diff"} <= {
        "failed_units",
        "unit_status",
        "unit_dependencies",
        "journal_query",
        "disk_usage",
        "largest_dirs",
        "top_processes",
        "metrics_query",
        "nixos_generations",
        "trigger_templates",
        "incident_history",
        "knowledge_search",
    }


def test_generation_closure_diff_from_the_snapshot(tmp_path: Any) -> None:
    tools, host, runner = _toolset("activation-failed-after-switch", tmp_path)
    r = _call(tools, "nixos_generation_diff", {"from": 42, "to": 43})
    assert r.ok and "myapp: 1.4.2 → 2.0.0" in r.text and r.summary == "3 changed packages"
    r = _call(tools, "nixos_generation_diff", {"from": 41, "to": 43})
    assert not r.ok and "no closure diff from 41 to 43; it has: 42 -> 43" in r.text
    r = _call(tools, "nixos_generation_diff", {"from": 7, "to": 43})
    assert not r.ok and "invalid argument from: generation 7 does not exist" in r.text
    r = _call(tools, "nixos_generations", {})
    assert "43 2025-06-15 15:06 ? (current_profile) (running)" in r.text
    assert host.calls.count("generation_diff") == 3 and runner.refused == []


def test_new_host_fields_are_validated_naming_the_field(tmp_path: Any) -> None:
    import json

    import pytest

    from ai_sysadmin.eval.scenario import ScenarioError

    base = json.loads((shipped_dir() / "crash-loop-myapp.json").read_text())
    for host_patch, field in (
        ({"units": {"failed": [], "status": {"x.service": {"Result": ["no"]}}}}, "host.units.status.x.service.Result"),
        (
            {"units": {"failed": [], "dependencies": {"x.service": {"Requires": "a"}}}},
            "host.units.dependencies.x.service",
        ),
        ({"generations": [{"number": 1, "closure_diff": 3}]}, "host.generations[0].closure_diff"),
        ({"generations": [{"date": "x"}]}, "host.generations[0].number"),
        ({"processes": [{"comm": "x"}]}, "host.processes[0].pid"),
        ({"disks": [{"mount": "/", "used_percent": 1, "size_gb": -1}]}, "host.disks[0].size_gb"),
    ):
        data = {**base, "host": {**base["host"], **host_patch}}
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ScenarioError, match=field.replace("[", r"\[").replace("]", r"\]")):
            load_scenario(path)


def test_an_incident_carries_what_its_evidence_supports(tmp_path: Any) -> None:
    # As the incident service stores it: the diagnosis of this incident chooses among these.
    _tools, host, _runner = _toolset("crash-loop-myapp", tmp_path)
    first = host.incident_list[0]
    incident = asyncio.run(host.incident(first.id))
    assert incident is not None and "restart_unit" in incident["candidate_actions"]
    assert "nix_store_repair" not in incident["candidate_actions"]
