"""Builders shared by the L1 tests: journal entries, pipelines from config, replays of real files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.follower import build_pipeline
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.pipeline import Pipeline
from ai_sysadmin.trigger.sources import iter_entries

T0_USEC = 1_750_000_000_000_000  # 2025-06-15, on a 300 s window boundary


def entry(
    message: str | bytes, *, ident: str = "app", unit: str | None = None, priority: int = 6, **extra: Any
) -> dict[str, Any]:
    """One entry as journald stores it: the `_` fields are journald's own (trusted), as a real sender gets them.

    `ident="systemd"` is PID 1 (its messages about a unit name it in UNIT=), `ident="kernel"`
    comes over the kernel transport; any other sender is an ordinary process (pid 4242).
    """
    e: dict[str, Any] = {"MESSAGE": message, "PRIORITY": priority, "SYSLOG_IDENTIFIER": ident}
    if ident == "systemd":
        e.update({"_PID": "1", "_UID": "0", "_COMM": "systemd", "_TRANSPORT": "journal", "_SYSTEMD_UNIT": "init.scope"})
    elif ident == "kernel":
        e["_TRANSPORT"] = "kernel"
    else:
        e.update({"_PID": "4242", "_COMM": ident[:15]})
    if unit:
        e["_SYSTEMD_UNIT"] = unit
    e.update(extra)
    return e


def pipeline(tmp_path: Path | None = None, *, model: Any = None, **trigger: Any) -> Pipeline:
    cfg = parse_config({"state_dir": str(tmp_path or "/nonexistent"), "trigger": trigger}, env={})
    return build_pipeline(cfg.trigger, state_dir=str(tmp_path) if tmp_path else None, model=model)


def replay(path: Path, pipe: Pipeline | None = None, bad: list | None = None) -> tuple[Pipeline, list[Trigger]]:
    pipe = pipe or pipeline()

    def on_bad(lineno: int, reason: str) -> None:
        pipe.bad_line()
        if bad is not None:
            bad.append((lineno, reason))

    for e in iter_entries(path, on_bad=on_bad):
        pipe.process(e)
    return pipe, pipe.totals()


def by_source(triggers: Iterable[Trigger]) -> dict[str, list[Trigger]]:
    out: dict[str, list[Trigger]] = {}
    for t in triggers:
        out.setdefault(t.source, []).append(t)
    return out


class Taken:
    """What the hub's pipelines took in (`Pipeline.process`) and passed over, per message, in order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.order: list[tuple[str, str]] = []
        process, pass_over = Pipeline.process, Pipeline.pass_over

        def processed(p: Pipeline, e: Any) -> Any:
            self.order.append(("in", e.message))
            return process(p, e)

        def passed(p: Pipeline, e: Any) -> None:
            self.order.append(("over", e.message))
            pass_over(p, e)

        monkeypatch.setattr(Pipeline, "process", processed)
        monkeypatch.setattr(Pipeline, "pass_over", passed)

    def counts(self) -> Counter[str]:
        return Counter(m for kind, m in self.order if kind == "in")
