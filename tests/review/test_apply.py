"""What a valid answer leads to, without a model: findings, proposals through the policy
(invalid ones refused with the reason), escalation to L4 debounced per incident, and the
early-review debounce."""

from __future__ import annotations

import time

from ai_sysadmin.context.build import build_context
from ai_sysadmin.review.candidates import candidates_for
from tests.review.conftest import review_cfg, service


async def test_answer_applied_invalid_refused_escalation_debounced(tmp_path) -> None:
    cfg = review_cfg(tmp_path, "http://127.0.0.1:9")
    svc = service(cfg, client=None)
    svc.budget = 4000  # no tokenizer here: the conservative estimate needs room
    calls: list[tuple[int, str]] = []

    async def escalate(incident_id: int, reason: str) -> None:
        calls.append((incident_id, reason))

    svc.escalate = escalate
    incs = list(svc.incidents())
    inputs = await svc._inputs(incs, {i.key: candidates_for(i, lambda u: False) for i in incs})
    ctx = await build_context(inputs, svc.counter, svc.budget)
    tref = next(iter(ctx.trigger_refs))
    answer = {"status": "critical", "escalate": True, "escalate_reason": "looks like a leak",
              "findings": [{"incident": 1, "severity": "critical", "category": "unit-failure",
                            "summary": "myapp crash-loops", "evidence": ["I1", tref]}],
              "actions": [{"action": "restart_unit", "params": {"unit": "myapp.service"}, "incident": 1,
                           "reason": "crash loop"},
                          {"action": "restart_unit", "params": {"unit": "bad unit; rm -rf /"}, "incident": 1,
                           "reason": "nonsense"}]}
    from ai_sysadmin.review.service import ReviewResult

    res = ReviewResult(reason="test")
    await svc._apply(answer, ctx, res, incs)
    [finding] = res.findings
    assert finding["layer"] == "review" and finding["evidence"] == ["I1", ctx.trigger_refs[tref]]
    ok, bad = res.proposals
    assert ok["decision"] == "queue" and ok["risk"] == "low" and ok["source"] == "review"
    assert bad["decision"] == "refuse" and any("params.unit" in e for e in bad["errors"])
    assert calls == [(1, "looks like a leak")] and res.escalated == [1]
    res2 = ReviewResult(reason="test")
    await svc._apply(answer, ctx, res2, incs)
    assert calls == [(1, "looks like a leak")]  # debounced: once per escalate_min_interval
    assert res2.proposals == [] or all(p["action"] != "restart_unit" or p["decision"] == "refuse"
                                       for p in res2.proposals)  # the valid one is not proposed twice


def test_early_review_is_debounced(tmp_path) -> None:
    from tests.review.conftest import triggers

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
