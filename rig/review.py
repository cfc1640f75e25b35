"""A ReviewService over real parts (the catalog, the dry-run policy) and three canned triggers.

Shared by the review tests (tests/review/) and bench/review_model.py; the caller brings the
model client (a real llama-server).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_sysadmin.actions.proposals import DryRunProposer
from ai_sysadmin.config import Config
from ai_sysadmin.context.window import TriggerWindow
from ai_sysadmin.incidents.correlate import Correlator, UnitView
from ai_sysadmin.incidents.health import StaticUnits
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.review.record import MemoryReviewSink
from ai_sysadmin.review.reviewer import ReviewService
from ai_sysadmin.review.state_sources import SnapshotState
from ai_sysadmin.trigger.entry import PID1
from ai_sysadmin.trigger.model import Trigger, template_id


def triggers() -> list[Trigger]:
    t0 = datetime.now(UTC)
    rows = [
        (
            "critical",
            "unit-failure",
            "myapp.service",
            "myapp.service: Start request repeated too quickly.",
            "rule:unit-crashloop",
        ),
        ("high", "unit-failure", "myapp.service", "myapp.service: Failed with result 'exit-code'.", "rule:unit-failed"),
        ("high", "disk-full", None, "filesystem <*> is <*>% full", "threshold:disk"),
    ]
    out = []
    for i, (sev, cat, unit, text, src) in enumerate(rows):
        at = t0 + timedelta(seconds=i)
        out.append(
            Trigger(
                id=f"{i:02d}" + "ab" * 15,
                severity=sev,
                category=cat,
                source=src,
                unit=unit,
                template=text,
                template_id=template_id(text),
                count=3,
                first_seen=at,
                last_seen=at,
                sample=[text.replace("<*>", "97")],
                summary=text,
                # systemd's own words about myapp: PID 1 sent them (trigger/entry.py)
                fields={"sender": PID1} if unit else {},
            )
        )
    return out


def service(cfg: Config, *, client: LLMClient | None) -> ReviewService:
    corr = Correlator(cfg.review)
    ts = triggers()
    corr.add(ts)
    for n, inc in enumerate(sorted(corr.incidents.values(), key=lambda i: i.key), 1):
        inc.id = n
    window = TriggerWindow(cfg.review.max_triggers)
    window.add(ts)
    return ReviewService(
        cfg,
        incidents=corr.active,
        window=window,
        proposer=DryRunProposer(cfg),
        sink=MemoryReviewSink(),
        state=SnapshotState(cfg),
        units=StaticUnits(UnitView(True, frozenset({"myapp.service"}))),
        client=client,
    )
