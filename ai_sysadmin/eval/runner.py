"""Run one scenario through the real path: L1 -> incidents -> L2 -> L3 review -> L4 -> policy.

The journal is written as a `journalctl -o json` export and read by L1's own reader
(trigger.replay.run_l1); the host snapshot becomes metric samples and unit states; the
review runs with the dry-run proposer (catalog validation and policy at the chosen
autonomy level, nothing recorded, nothing executed).  The role models are the ones
the configuration names; with `use_model=False` only the deterministic path runs.

L4 (eval.investigate) runs after the review for the incidents the review escalated
(`investigate="escalated"`), every incident (`"all"`) or none, with the investigation
tools answering from the scenario (eval.snapshot_host); its proposals go to the same
dry-run proposer.  Without a model there is no L4 (the observation says so).

A model that is down makes the scenario `skipped` with the reason -- never a score of
the fallback path passed off as the model's.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ai_sysadmin.config import Config
from ai_sysadmin.eval.scenario import Scenario
from ai_sysadmin.eval.score import Observation


@dataclass
class RunOutcome:
    observation: Observation | None
    skipped: str | None = None  # why there is no observation


async def model_down(cfg: Config, role: str) -> str | None:
    """Why the role's model cannot be used now (None: it answers /health, or is disabled)."""
    from ai_sysadmin.llm import LLMClient

    rc = getattr(cfg.roles, role)
    if rc is None or not rc.enable:
        return None
    async with LLMClient(rc) as client:
        h = await client.health()
    if h.ok or h.status == "unsupported":
        return None
    return f"{role} model at {rc.url} is {h.status}{': ' + h.detail if h.detail else ''}"


async def run_scenario(
    cfg: Config, sc: Scenario, *, use_model: bool, autonomy: str, investigate: str = "escalated"
) -> RunOutcome:
    from ai_sysadmin.eval.investigate import investigate as run_l4
    from ai_sysadmin.eval.investigate import targets
    from ai_sysadmin.review.replay import review_pipeline
    from ai_sysadmin.trigger.replay import run_l1

    with tempfile.TemporaryDirectory(prefix="ai-sysadmin-eval-") as tmp:
        source = sc.write_export(Path(tmp))
        l1 = await run_l1(cfg, str(source), use_model=use_model, kind="json")
    if use_model and l1.model_error:
        return RunOutcome(None, f"trigger model failed: {l1.model_error}")
    samples, units = sc.snapshot()
    escalated: list[tuple[int, str]] = []

    async def escalate(incident_id: int, reason: str) -> None:  # recorded; investigated after the review
        escalated.append((incident_id, reason))

    run = await review_pipeline(
        cfg, l1.triggers, use_model=use_model, autonomy=autonomy, samples=samples, units=units, escalate=escalate
    )
    res = run.result
    # Down before or during the review: what follows is the rules' fallback, not the model's judgement.
    # (An answer that was invalid is the model's own result and is scored: review column `failed`.)
    if use_model and res.error and res.error.startswith(("review model unavailable", "review model failed mid-review")):
        return RunOutcome(None, res.error)
    obs = Observation(
        incidents=[
            {"category": i.category, "severity": i.severity, "title": i.title, "units": sorted(i.all_units)}
            for i in run.incidents
        ],
        proposals=[
            {k: p.get(k) for k in ("action", "params", "decision", "source", "risk", "incident")} for p in res.proposals
        ],
        review_outcome=res.outcome,
        review_error=res.error,
        l1_s=l1.seconds,
        review_s=run.seconds,
        model_s=res.latency_s,
        trigger_model_calls=l1.pipeline.classifier.calls if l1.pipeline.classifier is not None else 0,
        prompt_tokens=res.prompt_tokens,
        completion_tokens=res.completion_tokens,
        escalated=[i for i, _ in escalated],
    )
    if not use_model:
        obs.l4_note = "not run: no model (--no-model)"
    elif investigate == "none":
        obs.l4_note = "not run (--investigate none)"
    elif not cfg.roles.meta.enable:
        obs.l4_note = "not run: the meta role is disabled"
    else:
        todo = targets(investigate, run, escalated)
        obs.investigations = await run_l4(cfg, sc, run, todo)
        if not todo:
            obs.l4_note = "nothing to investigate (the review escalated no incident)"
    return RunOutcome(obs)
