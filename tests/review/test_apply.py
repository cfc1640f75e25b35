"""What a valid answer leads to, without a model: findings, the chosen candidates proposed
through the policy (their parameters from the candidate), escalation to L4 debounced per
incident, and the early-review debounce."""

from __future__ import annotations

import json
import time

from ai_sysadmin.context.build import build_context
from ai_sysadmin.review.candidates import candidates_for
from ai_sysadmin.review.reviewer import labelled
from rig.review import service
from tests.review.conftest import review_cfg


async def test_answer_applied_choices_bound_escalation_debounced(tmp_path) -> None:
    cfg = review_cfg(tmp_path, "http://127.0.0.1:9")
    svc = service(cfg, client=None)
    svc.budget = 4000  # no tokenizer here: the conservative estimate needs room
    calls: list[tuple[int, str]] = []

    async def escalate(incident_id: int, reason: str) -> None:
        calls.append((incident_id, reason))

    svc.escalate = escalate
    incs = list(svc.incidents())
    cands = {i.key: candidates_for(i, lambda u: False) for i in incs}
    choices = labelled(incs, cands)
    inputs = await svc._inputs(incs, cands)
    ctx = await build_context(inputs, svc.counter, svc.budget)
    tref = next(iter(ctx.trigger_refs))
    restart = next(k for k, (_i, a, p) in choices.items() if a == "restart_unit" and p == {"unit": "myapp.service"})
    own = choices[restart][0].id
    notify = next(k for k, (i, a, _p) in choices.items() if a == "notify" and i.id == own)
    other = next((i.id for i in incs if i.id != own), 99)
    answer = {
        "status": "critical",
        "escalate": True,
        "escalate_reason": "looks like a leak",
        "findings": [
            {
                "incident": 1,
                "summary": "myapp crash-loops",
                "severity": "critical",
                "category": "unit-failure",
                "evidence": ["I1", tref],
            }
        ],
        "actions": [
            {"reason": "crash loop", "incident": own, "choice": restart},
            # a choice filed under another incident: bound to its candidate's own incident
            {"reason": "tell a person", "incident": other, "choice": notify},
        ],
    }
    from ai_sysadmin.review.reviewer import ReviewResult

    res = ReviewResult(reason="test")
    await svc._apply(answer, ctx, res, incs, choices)
    [finding] = res.findings
    assert finding["layer"] == "review" and finding["evidence"] == ["I1", ctx.trigger_refs[tref]]
    ok, note = res.proposals
    # the parameters are the candidate's, never the model's
    assert (ok["action"], ok["params"], ok["incident"]) == ("restart_unit", {"unit": "myapp.service"}, own)
    assert ok["decision"] == "queue" and ok["risk"] == "low" and ok["source"] == "review"
    assert (note["action"], note["params"], note["incident"]) == ("notify", choices[notify][2], own)
    assert calls == [(1, "looks like a leak")] and res.escalated == [1]
    res2 = ReviewResult(reason="test")
    await svc._apply(answer, ctx, res2, incs, choices)
    assert calls == [(1, "looks like a leak")]  # debounced: once per escalate_min_interval
    assert res2.proposals == []  # each (incident, action, params) is proposed once
    # the rules' candidates come after: what the model chose is not proposed again
    await svc._propose_candidates(incs, cands, res2)
    assert {(p["incident"], p["action"], json.dumps(p["params"])) for p in res2.proposals} == {
        (i.id, a, json.dumps(p)) for k, (i, a, p) in choices.items() if k not in (restart, notify)
    }
    assert {p["source"] for p in res2.proposals} == {"rules"}


def test_early_review_is_debounced(tmp_path) -> None:
    from rig.review import triggers

    cfg = review_cfg(tmp_path, "http://127.0.0.1:9")
    svc = service(cfg, client=None)
    before = time.monotonic()
    svc.notify(triggers())
    first = svc._early_at
    assert first is not None and first >= before + cfg.review.debounce_seconds
    svc.notify(triggers())
    assert svc._early_at == first  # a second critical trigger does not push or add a run
    svc._early_at, svc._last_early = None, time.monotonic()
    svc.notify(triggers())
    assert svc._early_at >= svc._last_early + cfg.review.early_min_interval  # at most one per minute
    svc._early_at = None
    model_only = [t for t in triggers()]
    for t in model_only:
        t.source = "model"
    svc.notify(model_only)
    assert svc._early_at is None  # the model's opinion alone never asks for an early run
