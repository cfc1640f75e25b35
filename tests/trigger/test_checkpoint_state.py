"""A crash at any entry (seeded, 150 crash points) resumes exactly: bursts and min-count rules on,
the stored triggers equal one clean pass.  The real `ai-sysadmin run` with the model is
tests/hostile/test_kill_loop.py; this covers many more crash points in-process, fast."""

from __future__ import annotations

import random
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.follower import TriggerFollower, build_pipeline
from ai_sysadmin.trigger.reader import JournalSource
from ai_sysadmin.trigger.sink import JsonlTriggerSink
from tests.trigger.helpers import T0_USEC

TRIGGER = {
    "window_seconds": 10,
    "burst_factor": 4,
    "burst_min_count": 30,
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


def entries(rnd: random.Random) -> list[Entry]:
    out: list[Entry] = []
    for w in range(14):
        lines = [("cachd", f"cache refreshed {n} keys", 6) for n in range(6 + (70 if w == 9 else 0))]
        lines += [("gate", f"login refused for account u{n}", 5) for n in range(rnd.choice([0, 3, 6, 7, 9, 12]))]
        lines += [("beat", f"heartbeat ok seq {n}", 6) for n in range(4)]
        rnd.shuffle(lines)
        for i, (ident, msg, pri) in enumerate(lines):
            out.append(
                Entry(
                    message=msg,
                    realtime_usec=T0_USEC + w * 10_000_000 + i * 10_000,
                    priority=pri,
                    identifier=ident,
                    unit=f"{ident}.service",
                )
            )
    for i, e in enumerate(out):
        e.cursor = f"c{i:05d}"
    return out


async def test_a_crash_at_any_entry_resumes_exactly(tmp_path: Path) -> None:
    rnd = random.Random(4242)
    es = entries(rnd)
    tcfg = parse_config({"trigger": TRIGGER}, env={}).trigger
    state = tmp_path / "state"
    sink = JsonlTriggerSink(tmp_path / "sink.jsonl")
    crashes = sorted(rnd.sample(range(len(es)), 150))
    done = 0
    for stop in [*crashes, len(es)]:
        follower = TriggerFollower(tcfg, JournalSource("file", "/unused"), sink, state_dir=str(state), model=None)
        cursor, number = await sink.load_position()
        follower.pipeline = build_pipeline(tcfg, state_dir=str(state), model=None, start_cursor=cursor)
        saved = follower.checkpoints.load(number)
        assert (saved is None) == (cursor is None)
        if saved is not None:
            assert follower.pipeline.restore(saved)
        follower._recorded_cursor = cursor
        start = 0 if cursor is None else int(cursor[1:]) + 1
        assert start <= max(done, 1)  # never past what was read: nothing skipped
        for i in range(start, stop):
            follower.pipeline.process(es[i])
            if rnd.random() < 0.15:  # checkpoints at arbitrary entries
                await follower.commit()
        if stop == len(es):
            await follower.commit()
        elif rnd.random() < 0.3:
            # Killed between writing the state file and committing it: that file must be ignored.
            cp = follower.pipeline.checkpoint()
            follower.checkpoints.write(cp.state)
        done = stop
    # The truth: one clean pass, with the run's template generation so that trigger ids compare.
    clean = build_pipeline(tcfg, state_dir=None, model=None)
    clean.templates.generation = (state / "trigger" / "templates.drain").read_bytes().partition(b"\n")[0].decode()
    for e in es:
        clean.process(e)
    assert {"burst", "rule:login-storm"} <= {t.source for t in clean.totals()}  # both stateful paths exercised
    got = {t.id: t.count for t in sink.triggers().values()}
    assert got == {t.id: t.count for t in clean.totals()}
