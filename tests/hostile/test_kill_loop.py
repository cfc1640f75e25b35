"""kill -9 at random moments, with the trigger model, bursts and min-count rules on: after the
last restart the stored triggers equal one clean replay of the same journal.

A seeded loop of 20 kills of a real `ai-sysadmin run` (real journal file, real PostgreSQL, real
llama-server).  The journal grows between kills, so kills land while L1 reads a backlog, while
entries wait for the model, between a checkpoint's state file and its commit, and during start-up.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.burst import BurstDetector
from ai_sysadmin.trigger.classifier import AnswerCache, Classifier
from ai_sysadmin.trigger.pipeline import Pipeline
from ai_sysadmin.trigger.rules import RuleSet
from ai_sysadmin.trigger.sources import iter_entries
from ai_sysadmin.trigger.templates import Templates
from rig.journal import JournalWriter
from rig.llama import LlamaServer
from rig.net import wait_until
from tests.hostile.conftest import Service, conninfo, last_cursor, stored_position, stored_triggers
from tests.trigger.helpers import T0_USEC, entry

SEED = 20261201
KILLS = 20
WINDOW_S = 10
TRIGGER_CFG: dict[str, Any] = {
    "window_seconds": WINDOW_S,
    "commit_interval": 0.05,
    "poll_interval": 0.05,
    "burst_factor": 4,
    "burst_min_count": 30,
    "model_min_severity": "info",
    "model_calls_per_minute": 6000,
    "model_batch_size": 2,
    "rules": [
        {
            "id": "login-storm",
            "severity": "high",
            "category": "auth",
            "summary": "login failures",
            "pattern": "login refused for account",
            "min_count": 7,
        }
    ],
}


def journal_entries(rnd: random.Random) -> list[dict[str, Any]]:
    """~14 windows: steady noise (burst baselines), one burst, min-count failures, novel errors for the model."""
    out = []
    models = [
        f"{w} calibration drift exceeded tolerance on rack {{n}}"
        for w in ("widget", "sprocket", "gizmo", "flange", "doohickey", "gadget", "cog", "lever")
    ]
    for w in range(14):
        base = T0_USEC + w * WINDOW_S * 1_000_000
        lines: list[dict[str, Any]] = []
        lines += [entry(f"cache refreshed {n} keys", ident="cachd", unit="cachd.service") for n in range(6)]
        lines += [entry(f"heartbeat ok seq {n}", ident="beat", unit="beat.service") for n in range(4)]
        if w == 9:  # a tight loop: ten times its usual rate
            lines += [entry(f"cache refreshed {n} keys", ident="cachd", unit="cachd.service") for n in range(70)]
        lines += [
            entry(f"login refused for account u{n}", ident="gate", unit="gate.service", priority=5)
            for n in range(rnd.choice([0, 3, 6, 7, 9, 12]))
        ]
        if w % 2 == 0:
            lines += [
                entry(models[w // 2].format(n=n), ident="rackd", unit="rackd.service", priority=3)
                for n in range(rnd.randint(1, 4))
            ]
        if w % 5 == 1:
            lines.append(entry(f"Out of memory: Killed process {w} (java)", ident="kernel", priority=3))
        rnd.shuffle(lines)
        for i, e in enumerate(lines):
            e["__REALTIME_TIMESTAMP"] = base + i * (WINDOW_S * 1_000_000 // (len(lines) + 1))
        out += lines
    return out


def clean_replay(jfile: Path, state: Path) -> Pipeline:
    """One uninterrupted pass over the whole file, with the run's answers (so the model's words are equal)."""
    tcfg = parse_config({"trigger": TRIGGER_CFG}, env={}).trigger
    templates = Templates(None)
    templates.generation = (state / "trigger" / "templates.drain").read_bytes().partition(b"\n")[0].decode()
    answers = state.parent / "answers-copy.json"
    shutil.copy(state / "trigger" / "model-answers.json", answers)
    classifier = Classifier(None, AnswerCache(answers))  # type: ignore[arg-type]  # every answer is cached
    pipe = Pipeline(
        templates,
        RuleSet.build(tcfg.rules, tcfg.disabled_rules, priority_max=tcfg.priority_max),
        window_seconds=tcfg.window_seconds,
        classifier=classifier,
        burst=BurstDetector(factor=tcfg.burst_factor, min_count=tcfg.burst_min_count),
        model_min_severity=tcfg.model_min_severity,
    )
    for e in iter_entries(jfile):
        pipe.process(e)
    return pipe


@pytest.mark.slow
def test_kill_9_at_random_moments_equals_one_clean_replay(
    pg_database: dict[str, Any], journal_writer: JournalWriter, llama_trigger: LlamaServer, tmp_path: Path
) -> None:
    rnd = random.Random(SEED)
    entries = journal_entries(rnd)
    size = -(-len(entries) // (KILLS + 1))
    chunks = [entries[i : i + size] for i in range(0, len(entries), size)]  # appended in time order
    assert len(chunks) == KILLS + 1
    jfile = tmp_path / "journal" / "kill.journal"
    state = tmp_path / "state"
    cfg = {
        "state_dir": str(state),
        "database": pg_database,
        "log_level": "info",
        "journal": {"source": "file", "path": str(jfile)},
        "retention": {"events_days": 0},
        "roles": {
            "trigger": {"url": llama_trigger.url, "model": llama_trigger.alias, "timeout": 300},
            "review": {"enable": False},
            "meta": {"enable": False},
        },
        "trigger": TRIGGER_CFG,
    }
    info = conninfo(pg_database)
    svc = Service(cfg, tmp_path)
    kills = 0
    try:
        for chunk in chunks[:-1]:
            journal_writer.write(jfile, chunk)
            starts = svc.log.read_text().count("L1 following") if svc.log.exists() else 0
            svc.start()
            if rnd.random() < 0.7:  # mostly while following; sometimes during start-up
                wait_until(
                    lambda starts=starts: svc.log.read_text().count("L1 following") > starts,
                    60,
                    "L1 started",
                    alive=svc.dead,
                )
                delay = rnd.uniform(0.0, 0.6)
            else:
                delay = rnd.uniform(0.0, 1.5)
            _pause(delay)
            assert svc.dead() is None, svc.dead()
            svc.kill9()
            kills += 1
        journal_writer.write(jfile, chunks[-1])
        end = last_cursor(jfile)
        svc.start()

        def settled() -> bool:
            cursor, number = stored_position(info)
            if cursor != end or number is None:
                return False
            held = json.loads((state / "trigger" / "checkpoints" / f"checkpoint-{number}.json").read_text())["held"]
            return not held

        wait_until(settled, 300, "the last entry recorded and every held entry answered", alive=svc.dead)
        assert svc.stop() == 0, svc.log.read_text()[-3000:]
    finally:
        svc.ensure_stopped()
    assert kills == KILLS

    truth = clean_replay(jfile, state)
    assert not truth.holding()  # every template the model was asked about has its answer in the cache
    want = {t.id: (t.source, t.count) for t in truth.totals()}
    got = {
        r["id"]: (r["source"], r["count"]) for r in stored_triggers(info) if not r["source"].startswith("threshold:")
    }
    sources = {s for s, _ in want.values()}
    assert {"model", "burst", "rule:login-storm", "rule:oom-kill"} <= sources, sources  # every path exercised
    assert got == want  # nothing lost, nothing counted twice, no trigger the clean run would not raise


def _pause(seconds: float) -> None:
    """The random moment of the next kill (a deliberate delay, not a synchronisation)."""
    import time

    time.sleep(seconds)
