"""Review tests: a ReviewService over real parts (llama-server, the catalog, the dry-run policy)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from ai_sysadmin.actions.proposals import DryRunProposer
from ai_sysadmin.config import Config, parse_config
from ai_sysadmin.context.window import TriggerWindow
from ai_sysadmin.incidents.correlate import Correlator, UnitView
from ai_sysadmin.incidents.health import StaticUnits
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.review.record import MemoryReviewSink
from ai_sysadmin.review.reviewer import ReviewService
from ai_sysadmin.review.state_sources import SnapshotState
from ai_sysadmin.trigger.entry import PID1
from ai_sysadmin.trigger.model import Trigger, template_id


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for a condition with a deadline (never a bare sleep as synchronisation)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(0.05)


def review_cfg(tmp_path: Path, url: str, model: str = "review", **role: Any) -> Config:
    # The test servers give each slot 2048 tokens of context (4096, --parallel 2).
    data = {"url": url, "model": model, "timeout": 300, "context_size": 2048, "max_tokens": 900, **role}
    return parse_config({"state_dir": str(tmp_path / "state"), "roles": {"review": data}}, env={})


def triggers() -> list[Trigger]:
    t0 = datetime.now(timezone.utc)
    rows = [("critical", "unit-failure", "myapp.service", "myapp.service: Start request repeated too quickly.",
             "rule:unit-crashloop"),
            ("high", "unit-failure", "myapp.service", "myapp.service: Failed with result 'exit-code'.", "rule:unit-failed"),
            ("high", "disk-full", None, "filesystem <*> is <*>% full", "threshold:disk")]
    out = []
    for i, (sev, cat, unit, text, src) in enumerate(rows):
        at = t0 + timedelta(seconds=i)
        out.append(Trigger(id=f"{i:02d}" + "ab" * 15, severity=sev, category=cat, source=src, unit=unit,
                           template=text, template_id=template_id(text), count=3, first_seen=at, last_seen=at,
                           sample=[text.replace("<*>", "97")], summary=text,
                           # systemd's own words about myapp: PID 1 sent them (trigger/entry.py)
                           fields={"sender": PID1} if unit else {}))
    return out


def service(cfg: Config, *, client: LLMClient | None) -> ReviewService:
    corr = Correlator(cfg.review)
    ts = triggers()
    corr.add(ts)
    for n, inc in enumerate(sorted(corr.incidents.values(), key=lambda i: i.key), 1):
        inc.id = n
    window = TriggerWindow(cfg.review.max_triggers)
    window.add(ts)
    return ReviewService(cfg, incidents=corr.active, window=window, proposer=DryRunProposer(cfg),
                         sink=MemoryReviewSink(), state=SnapshotState(cfg),
                         units=StaticUnits(UnitView(True, frozenset({"myapp.service"}))), client=client)
