"""One real eval run with L4: the tiny llama-server as review and meta model, the tools on the snapshot.

SmolLM2-135M cannot judge, so this checks plumbing only: the investigation ran through
the real loop, its tools answered from the scenario's host snapshot (the stand-in), no
command ran on this host, and the record has the shape the scoring reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.eval.runner import run_scenario
from ai_sysadmin.eval.scenario import load_scenario, shipped_dir
from ai_sysadmin.eval.score import score
from rig.llama import LlamaServer
from tests.meta.conftest import META_CTX, TINY_META, start_meta_server

READ_TOOLS = {
    "journal_query",
    "unit_status",
    "failed_units",
    "unit_dependencies",
    "metrics_query",
    "disk_usage",
    "largest_dirs",
    "top_processes",
    "nixos_generations",
    "nixos_generation_diff",
    "trigger_templates",
    "incident_history",
}


@pytest.fixture(scope="module")
def server(rig_logs: Path) -> Iterator[LlamaServer]:
    s = start_meta_server(rig_logs, alias="eval-l4")
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.timeout(900)
def test_a_scenario_with_l4_through_the_tiny_model(tmp_path: Path, server: LlamaServer) -> None:
    # The review and trigger models are off (the rules review the incident; eval's L1-L3 with a model are
    # tested elsewhere): the time goes to L4.  A short tool list keeps the tiny model's prompt small on
    # two shared cores; every tool is still answered by the stand-in (test_snapshot_host).
    role = {"url": server.url, "model": server.alias, "timeout": 300, "context_size": META_CTX, "max_retries": 0}
    cfg = parse_config(
        {
            "state_dir": str(tmp_path / "state"),
            "roles": {"trigger": {"enable": False}, "review": {"enable": False}, "meta": role},
            "meta": {
                **TINY_META,
                "max_steps": 2,
                "tools": ["failed_units", "unit_status", "journal_query", "disk_usage", "propose_action"],
            },
        },
        env={},
    )
    sc = load_scenario(shipped_dir() / "crash-loop-myapp.json")
    out = asyncio.run(run_scenario(cfg, sc, use_model=True, autonomy="auto-full", investigate="all"))
    assert out.skipped is None and out.observation is not None
    obs = out.observation
    assert obs.incidents and len(obs.investigations) == len(obs.incidents)
    for inv in obs.investigations:
        assert inv["host"] == "snapshot:crash-loop-myapp" and inv["skipped"] is None
        assert inv["commands_refused"] == 0  # nothing tried to run a command on this host
        assert inv["model_calls"] >= 2 and inv["prompt_tokens"] > 0  # tool turns and the diagnosis
        assert inv["diagnosis"]["source"] in ("model", "fallback") and inv["diagnosis"]["root_cause"]
        assert str(inv["incident"]) in inv["returned_ids"]["incident"]
        assert "incident" in inv["facts_asked"]  # the loop opened with the incident the stand-in holds
        answered = [s for s in inv["steps"] if s["ok"] and s["tool"] in READ_TOOLS]
        print("L4 steps:", [(s["tool"], s["ok"], s["summary"][:60]) for s in inv["steps"]], inv["facts_asked"])
        # Each read tool that answered was answered by the snapshot (the stand-in records every fact asked).
        assert len(inv["facts_asked"]) >= len(answered)
        for p in inv["proposals"]:
            assert p["source"] == "meta" and p["decision"] in ("record", "queue", "execute", "refuse")
            assert p["incident"] == inv["incident"]  # to the review's dry-run proposer, for this incident
    s = score(sc.name, sc.family, sc.key, obs)
    assert s.l4_runs == len(obs.investigations) and s.l4_cause in (True, False)
    assert s.l4_tokens > 0 and s.l4_s > 0 and 0 <= s.l4_grounded <= s.l4_cited
