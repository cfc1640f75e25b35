"""L1 over a finished source (journal file/directory, JSON export, text): the triggers it gives.

The same pipeline as the service (rules, templates, bursts, the trigger model once per
new template), run to the end of the source and drained.  Used by `ai-sysadmin replay`
and `ai-sysadmin eval`; nothing is stored unless `state_dir` is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from ai_sysadmin.config import Config
from ai_sysadmin.tasks import stop_tasks
from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger
from ai_sysadmin.trigger.pipeline import Pipeline

PROGRESS_EVERY = 2.0  # seconds between progress lines
MAX_BAD_SHOWN = 10


@dataclass
class L1Run:
    triggers: list[Trigger]  # sorted by first_seen, then severity (worst first)
    pipeline: Pipeline
    seconds: float  # wall time of the whole run, trigger-model calls included

    @property
    def model_summary(self) -> str:
        c = self.pipeline.classifier
        if c is None:
            return "off"
        return f"{c.calls} call(s), degraded: {c.last_error}" if c.degraded else f"{c.calls} call(s)"

    @property
    def model_error(self) -> str | None:
        """Why the trigger model failed during the run (None: it answered, or it was off)."""
        c = self.pipeline.classifier
        return c.last_error if c is not None and c.degraded else None


async def run_l1(
    cfg: Config,
    source: str,
    *,
    use_model: bool,
    window: int | None = None,
    state_dir: str | None = None,
    kind: str | None = None,
    err: TextIO | None = None,
    on_bad: Callable[[int, str], None] | None = None,
) -> L1Run:
    """Run L1 over `source` to its end; bad lines are counted (and the first few shown on `err`)."""
    from ai_sysadmin.llm import LLMClient
    from ai_sysadmin.trigger.follower import build_pipeline
    from ai_sysadmin.trigger.sources import iter_entries

    tcfg = cfg.trigger
    if window:
        tcfg = tcfg.model_copy(update={"window_seconds": window})
    # Replay is offline work: no per-minute budget, but still one call per new template.
    tcfg = tcfg.model_copy(update={"model_calls_per_minute": 1e9})
    model_on = use_model and tcfg.model and cfg.roles.trigger.enable
    client = LLMClient(cfg.roles.trigger) if model_on else None
    pipeline = build_pipeline(tcfg, state_dir=state_dir, model=client)
    bad_shown = 0

    def bad(lineno: int, reason: str) -> None:
        nonlocal bad_shown
        pipeline.bad_line()
        if on_bad is not None:
            on_bad(lineno, reason)
        if err is not None and bad_shown < MAX_BAD_SHOWN:
            print(f"replay: line {lineno}: skipped: {reason}", file=err)
            bad_shown += 1

    worker = asyncio.create_task(pipeline.classifier.run()) if pipeline.classifier else None
    started = last = time.monotonic()
    try:
        for i, entry in enumerate(iter_entries(source, max_message=tcfg.max_message, on_bad=bad, kind=kind), 1):
            pipeline.process(entry)
            if i % 4096 == 0:
                await asyncio.sleep(0)  # let model calls progress
                now = time.monotonic()
                if err is not None and now - last >= PROGRESS_EVERY:
                    last = now
                    print(
                        f"replay: {i} entries, {i / (now - started):,.0f}/s, "
                        f"{pipeline.stats.novel_templates} templates",
                        file=err,
                    )
        if pipeline.classifier is not None:
            await pipeline.classifier.drain()
            while not pipeline.classifier.idle:
                await asyncio.sleep(0.05)
    finally:
        await stop_tasks(worker)
        if client is not None:
            await client.aclose()
    triggers = sorted(pipeline.totals(), key=lambda t: (t.first_seen, -SEVERITY_RANK[t.severity], t.id))
    return L1Run(triggers, pipeline, time.monotonic() - started)
