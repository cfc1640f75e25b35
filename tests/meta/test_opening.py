"""An incident's investigation opens with the reads its category and unit call for (meta/opening.py).

The choice is a pure function of the incident's own fields; the loop tests run the real
meta llama-server (tiny model) and assert where the opening reads land: before the
model's first turn, as calls it can cite and is refused to repeat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.loop import _repeat_reason
from ai_sysadmin.meta.opening import MAX_OPENING_CALLS, opening_calls
from ai_sysadmin.store.incidents import IncidentStore
from rig.llama import LlamaServer
from tests.meta.conftest import meta_config
from tests.meta.test_loop import run

ALL = frozenset(
    {
        "journal_query",
        "unit_status",
        "disk_usage",
        "top_processes",
        "nixos_generations",
        "failed_units",
        "metrics_query",
    }
)


@pytest.mark.parametrize(
    "incident, expected",
    [
        (
            {"category": "crash", "unit": "myapp.service"},
            [("journal_query", {"unit": "myapp.service", "lines": 20}), ("unit_status", {"unit": "myapp.service"})],
        ),
        (
            {"category": "disk-full", "unit": "postgresql.service"},
            [("disk_usage", {}), ("journal_query", {"unit": "postgresql.service", "lines": 20})],
        ),
        (
            {"category": "filesystem", "unit": None},
            [("disk_usage", {}), ("journal_query", {"priority": "err", "lines": 20})],
        ),
        (
            {"category": "oom", "unit": "worker.service"},
            [
                ("top_processes", {"sort_by": "memory", "limit": 8}),
                ("journal_query", {"unit": "worker.service", "lines": 20}),
            ],
        ),
        (
            {"category": "nix", "unit": None},
            [("nixos_generations", {}), ("journal_query", {"priority": "err", "lines": 20})],
        ),
        # Host-wide incidents (clock, kernel, network): what went wrong lately.
        ({"category": "time", "unit": None}, [("journal_query", {"priority": "err", "lines": 20})]),
        # A "unit" the tools would refuse (a kernel thread, text from a log line) is not offered as an argument.
        ({"category": "kernel", "unit": "kworker/0:1"}, [("journal_query", {"priority": "err", "lines": 20})]),
        ({"category": "crash", "unit": "x.service; reboot"}, [("journal_query", {"priority": "err", "lines": 20})]),
    ],
)
def test_the_incident_chooses_its_first_reads(incident: dict, expected: list) -> None:
    assert opening_calls(incident, ALL) == expected
    assert len(expected) <= MAX_OPENING_CALLS


def test_only_offered_tools_are_called() -> None:
    incident = {"category": "disk-full", "unit": "postgresql.service"}
    assert opening_calls(incident, frozenset({"unit_status"})) == [("unit_status", {"unit": "postgresql.service"})]
    assert opening_calls(incident, frozenset({"propose_action"})) == []


def test_a_repeat_of_a_failed_call_is_told_why_it_failed() -> None:
    failed = _repeat_reason("c1", "error: invalid argument priority: must be one of ...")
    assert "c1, which failed (error: invalid argument priority" in failed and "change the arguments" in failed
    assert "its result is above" in _repeat_reason("c2", None)


async def test_opening_reads_come_before_the_first_turn_and_count_as_calls(
    tmp_path: Path, meta_server: LlamaServer, migrated, crash_journal: Path
) -> None:
    db, pool = migrated
    cfg = meta_config(
        tmp_path,
        meta_server,
        database=db,
        journal={"source": "file", "path": str(crash_journal)},
        meta={"max_steps": 2, "tools": ["journal_query", "disk_usage"]},
    )
    incident = await IncidentStore(pool).open("myapp.service keeps failing", "high", "crash", "myapp.service", [])
    inv = await run(cfg, question="Why does it fail?", store=MetaFindings(pool), incident_id=incident)
    first = inv.steps[0]
    assert (first.call_id, first.tool, first.arguments, first.turn, first.ok) == (
        "c1",
        "journal_query",
        {"unit": "myapp.service", "lines": 20},
        0,
        True,
    )
    assert [s.turn for s in inv.steps].count(0) == 1  # unit_status is not offered here
    # In the conversation right after the question: the call, then its result in one envelope.
    call, result = inv.messages[2], inv.messages[3]
    assert call["role"] == "assistant" and [c["id"] for c in call["tool_calls"]] == ["c1"]
    assert result["role"] == "tool" and result["tool_call_id"] == "c1"
    assert 'kind="tool:journal_query"' in result["content"] and "Main process exited" in result["content"]
    # The model's own calls follow, numbered after it; the turns are the model's only.
    assert all(s.turn >= 1 for s in inv.steps[1:]) and [s.call_id for s in inv.steps] == [
        f"c{n}" for n in range(1, len(inv.steps) + 1)
    ]
    assert inv.turns and inv.turns[0]["kind"] == "tools"


async def test_a_model_repeating_an_opening_read_is_refused(tmp_path: Path, meta_server: LlamaServer, migrated) -> None:
    db, pool = migrated
    # disk_usage takes no arguments: the tiny model's call of it is the opening call again.
    cfg = meta_config(tmp_path, meta_server, database=db, meta={"max_steps": 2, "tools": ["disk_usage"]})
    incident = await IncidentStore(pool).open("/ is 99% full", "critical", "disk-full", None, [])
    inv = await run(cfg, question="Is a disk full?", store=MetaFindings(pool), incident_id=incident)
    assert (inv.steps[0].tool, inv.steps[0].turn, inv.steps[0].ok) == ("disk_usage", 0, True)
    later = [s for s in inv.steps[1:] if s.tool == "disk_usage" and isinstance(s.arguments, dict) and not s.arguments]
    assert later and all(s.refused and "identical to c1" in s.summary for s in later)


async def test_no_opening_reads_when_turned_off_or_without_an_incident(
    tmp_path: Path, meta_server: LlamaServer, migrated
) -> None:
    db, pool = migrated
    cfg = meta_config(
        tmp_path, meta_server, database=db, meta={"max_steps": 1, "tools": ["disk_usage"], "opening_calls": False}
    )
    incident = await IncidentStore(pool).open("/ is 99% full", "critical", "disk-full", None, [])
    inv = await run(cfg, question="Is a disk full?", store=MetaFindings(pool), incident_id=incident)
    assert inv.steps and all(s.turn >= 1 for s in inv.steps)
    cfg = meta_config(tmp_path, meta_server, database=db, meta={"max_steps": 1, "tools": ["disk_usage"]})
    inv = await run(cfg, question="Is a disk full?", store=MetaFindings(pool))
    assert inv.steps and all(s.turn >= 1 for s in inv.steps)
