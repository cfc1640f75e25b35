"""`replay --through review`: L1's triggers -> incidents -> L2 -> L3 -> policy, executing nothing.

Everything is in memory (a throwaway state): incidents are numbered from 1 in the
order they open, proposals go to the dry-run proposer (same catalog validation and
policy as the service, records nothing, runs nothing).  Output: one JSON object per
line with `kind` = trigger | incident | finding | proposal (docs/review.md).

`--metrics FILE` adds a metric snapshot: {"samples": [{"name", "subject", "value"}],
"units": {"failed": [...]}} -- threshold triggers from the samples, unit states for
the context -- so a scenario can say "and the disk is 99% full".
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ai_sysadmin.config import Config
from ai_sysadmin.trigger.model import Trigger

if TYPE_CHECKING:  # imported where used: `replay` starts without the layers it does not run
    from ai_sysadmin.actions.proposals import DryRunProposer
    from ai_sysadmin.collect.units import UnitStates
    from ai_sysadmin.incidents.correlate import Incident
    from ai_sysadmin.review.hooks import Escalate
    from ai_sysadmin.review.reviewer import ReviewResult
    from ai_sysadmin.store.metrics import Sample

PROPOSAL_KEYS = ("action", "params", "risk", "source", "decision", "reason", "incident", "errors")


class SnapshotError(ValueError):
    pass


def load_snapshot(path: str) -> tuple[list[Sample], UnitStates]:
    """(samples, UnitStates) from a metric snapshot file; errors name the field."""
    from ai_sysadmin.collect.units import UnitStates
    from ai_sysadmin.store.metrics import Sample

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"{path}: must be an object with samples and units")
    ts = float(data.get("ts") or time.time())
    samples = []
    for i, s in enumerate(data.get("samples") or []):
        if (
            not isinstance(s, dict)
            or not isinstance(s.get("name"), str)
            or not isinstance(s.get("value"), (int, float))
            or isinstance(s.get("value"), bool)
        ):
            raise SnapshotError(f"{path}: samples[{i}]: needs a string name and a numeric value")
        samples.append(Sample(float(s.get("ts", ts)), s["name"], float(s["value"]), str(s.get("subject") or "")))
    u = data.get("units")
    if u is None:
        units = UnitStates(False, "not in the snapshot")
    elif isinstance(u, dict) and isinstance(u.get("failed", []), list):
        units = UnitStates(True, states={str(n): "failed" for n in u.get("failed", [])})
    else:
        raise SnapshotError(f"{path}: units: must be an object with a failed list")
    return samples, units


@dataclass
class ReviewRun:
    """What incidents, L2, L3 and the policy made of a set of triggers (nothing executed)."""

    triggers: list[Trigger]  # L1's, plus threshold triggers from the snapshot
    incidents: list[Incident]  # numbered from 1 in opening order
    incident_of: dict[str, int]  # trigger id -> incident number
    result: ReviewResult
    seconds: float  # wall time of correlation + context + review + policy
    proposer: DryRunProposer | None = None  # the review's (eval hands L4's proposals to it too)


async def review_pipeline(
    cfg: Config,
    triggers: Sequence[Trigger],
    *,
    use_model: bool,
    autonomy: str | None,
    samples: Sequence[Sample] = (),
    units: UnitStates | None = None,
    escalate: Escalate | None = None,
) -> ReviewRun:
    """Triggers -> incidents -> L2 -> L3 -> policy, in memory, with the dry-run proposer.

    `samples`/`units` (a metric snapshot) add threshold triggers and the unit states.
    `escalate`: the review's L4 hook (review.hooks.Escalate); eval records the escalations
    with it and investigates after the review.
    """
    from ai_sysadmin.actions.proposals import DryRunProposer
    from ai_sysadmin.collect.thresholds import evaluate
    from ai_sysadmin.context.window import TriggerWindow
    from ai_sysadmin.incidents.correlate import Correlator, UnitView
    from ai_sysadmin.incidents.health import StaticUnits
    from ai_sysadmin.review.record import MemoryReviewSink
    from ai_sysadmin.review.reviewer import ReviewService
    from ai_sysadmin.review.state_sources import SnapshotState

    started = time.monotonic()
    if autonomy:
        cfg = cfg.model_copy(update={"autonomy_level": autonomy})
    view = UnitView(False, reason="replay: no unit state (give --metrics with units)")
    triggers = list(triggers)
    samples = list(samples)
    if samples or units is not None:
        from ai_sysadmin.collect.units import UnitStates

        units = units if units is not None else UnitStates(False, "not in the snapshot")
        # Thresholds time unit states "now"; a snapshot is at its own time.
        at = datetime.fromtimestamp(samples[0].ts if samples else time.time(), UTC)
        triggers += [
            dataclasses.replace(t, first_seen=at, last_seen=at) if t.source == "threshold:failed-unit" else t
            for t in evaluate(samples, units, cfg.thresholds)
        ]
        if units.available:
            view = UnitView(True, frozenset(units.failed))
    triggers.sort(key=lambda t: (t.first_seen, t.id))
    correlator = Correlator(cfg.review)
    correlator.add(triggers)
    incidents = sorted(correlator.incidents.values(), key=lambda i: (i.first_seen, i.key))
    incident_of: dict[str, int] = {}  # trigger id -> incident number
    for n, inc in enumerate(incidents, 1):
        inc.id = n
        incident_of.update(dict.fromkeys(inc.evidence, n))
    window = TriggerWindow(cfg.review.max_triggers)
    window.add(triggers, incident_of)
    client = None
    if use_model and cfg.roles.review.enable:
        from ai_sysadmin.llm import LLMClient

        client = LLMClient(cfg.roles.review)
    from ai_sysadmin.actions.binding import Evidence
    from ai_sysadmin.review.candidates import supported_actions

    found = {inc.id: Evidence(frozenset(inc.all_units), frozenset(supported_actions(inc))) for inc in incidents}
    proposer = DryRunProposer(cfg, evidence=found.get)
    service = ReviewService(
        cfg,
        incidents=correlator.active,
        window=window,
        proposer=proposer,
        sink=MemoryReviewSink(),
        state=SnapshotState(cfg, samples),
        units=StaticUnits(view),
        client=client,
        use_model=use_model,
        escalate=escalate,
    )
    try:
        res = await service.review_once("replay")
    finally:
        if client is not None:
            await client.aclose()
    return ReviewRun(triggers, incidents, incident_of, res, time.monotonic() - started, proposer)


async def through_review(
    cfg: Config,
    triggers: Sequence[Trigger],
    out: TextIO,
    err: TextIO,
    *,
    use_model: bool,
    autonomy: str | None,
    metrics_path: str | None,
) -> int:
    samples: list[Sample] = []
    units = None
    if metrics_path:
        try:
            samples, units = load_snapshot(metrics_path)
        except (SnapshotError, OSError) as exc:
            print(f"ai-sysadmin replay: {exc}", file=err)
            return 2
    run = await review_pipeline(cfg, triggers, use_model=use_model, autonomy=autonomy, samples=samples, units=units)
    res, incidents, incident_of = run.result, run.incidents, run.incident_of

    def emit(obj: dict[str, Any]) -> None:
        print(json.dumps(obj, ensure_ascii=False, default=str), file=out)

    for t in run.triggers:
        emit({"kind": "trigger", **t.to_json(), "incident": incident_of.get(t.id)})
    for inc in incidents:
        emit({"kind": "incident", **inc.to_json()})
    for f in res.findings:
        emit({"kind": "finding", **f})
    for p in res.proposals:
        emit({"kind": "proposal", **{k: p.get(k) for k in PROPOSAL_KEYS}})
    print(
        f"replay: {len(incidents)} incident(s), review {res.outcome}"
        f"{' (' + res.error + ')' if res.error else ''}, {len(res.findings)} finding(s), "
        f"{len(res.proposals)} proposal(s), context {res.context_tokens} tokens"
        f"{', compacted: ' + ','.join(res.compaction) if res.compaction else ''}; nothing was executed",
        file=err,
    )
    return 0
