"""L3 review: on a timer and early on critical triggers, one structured model answer.

One review:
1. the active incidents (from the correlator), their deterministic candidates and advice;
2. L2: the trigger window, metrics, unit states, policy state and knowledge, built into a
   stable-first prompt under the token budget (context.build);
3. the review model answers in the `response_format` json_schema (review.schema): its
   actions are *choices* among the incidents' deterministic candidates, by label ("C1"),
   each with its reason first; an invalid or truncated answer gets one retry that shows
   the error, then the review is a recorded failure -- never a crash, never a guess;
4. proposals go through the Proposer (catalog validation + policy): the model's choices
   (source `review`, action and parameters taken from the chosen candidate, never from
   the model), then the deterministic candidates (source `rules`) -- always, whether the
   model answered, failed, is down or is not used.  Each (incident, action, params) is
   proposed once per incident, so a candidate the model chose is not proposed again;
5. the review row, its findings (with NixOS advice) and token figures (prompt, cached
   prompt share, completion) are recorded; `escalate` calls the L4 hook, debounced.

The scheduler runs every `intervals.review` and early: `review.debounce_seconds` after the
first trigger at or above `review.early_severity`, at most one early run per
`review.early_min_interval`.  Nothing a review does can stop the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ai_sysadmin.actions.types import Proposal, Proposer
from ai_sysadmin.config import Config
from ai_sysadmin.context.build import Context, ContextInputs, ContextTooLarge, build_context
from ai_sysadmin.context.tokens import TokenCounter
from ai_sysadmin.context.window import TriggerWindow
from ai_sysadmin.incidents.correlate import Incident
from ai_sysadmin.incidents.tracker import UnitSource
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.review.candidates import Candidates, candidates_for
from ai_sysadmin.review.hooks import Escalate
from ai_sysadmin.review.record import ReviewSink
from ai_sysadmin.review.schema import InvalidAnswer, answer_schema, choice_label, parse_answer
from ai_sysadmin.review.state_sources import StateSource
from ai_sysadmin.store.switches import SwitchStore
from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger

log = logging.getLogger(__name__)

Choice = tuple[Incident, str, dict[str, Any]]  # a labelled candidate: its incident, action, parameters

BUDGET_RESERVE = 256  # tokens kept free beyond the answer: the retry's error note and rounding
RUNBOOK_CHARS = 400


def default_budget(cfg: Config) -> int:
    if cfg.review.context_tokens:
        return cfg.review.context_tokens
    role = cfg.roles.review
    return max(512, role.context_size - (role.max_tokens or 1024) - BUDGET_RESERVE)


class ReviewOutcome(StrEnum):
    """How a review ended (stored as these words in reviews.outcome)."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class ReviewResult:
    reason: str
    outcome: ReviewOutcome = ReviewOutcome.SKIPPED
    status: str | None = None
    error: str | None = None
    attempts: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    latency_s: float | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    context_tokens: int = 0
    compaction: list[str] = field(default_factory=list)
    incident_ids: list[int] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    answer: dict[str, Any] | None = None
    escalated: list[int] = field(default_factory=list)
    id: int | None = None
    model: str | None = None

    @property
    def cached_share(self) -> float | None:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def row(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "reason": self.reason,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "completion_tokens": self.completion_tokens,
            "context_tokens": self.context_tokens,
            "latency_s": self.latency_s,
            "incident_ids": self.incident_ids,
            "answer": self.answer,
            "findings": self.findings,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reason": self.reason,
            "outcome": self.outcome,
            "status": self.status,
            "error": self.error,
            "attempts": self.attempts,
            "started_at": self.started_at.isoformat(),
            "latency_s": self.latency_s,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "cached_share": self.cached_share,
            "completion_tokens": self.completion_tokens,
            "context_tokens": self.context_tokens,
            "compaction": self.compaction,
            "incidents": self.incident_ids,
            "findings": self.findings,
            "proposals": self.proposals,
            "escalated": self.escalated,
        }


class ReviewService:
    def __init__(
        self,
        cfg: Config,
        *,
        incidents: Callable[[], Sequence[Incident]],
        window: TriggerWindow,
        proposer: Proposer,
        sink: ReviewSink,
        state: StateSource,
        units: UnitSource,
        client: LLMClient | None = None,
        counter: TokenCounter | None = None,
        escalate: Escalate | None = None,
        budget: int | None = None,
        use_model: bool = True,
        switches: SwitchStore | None = None,
    ):
        self.cfg = cfg
        self.switches = switches  # incidents attributed to a NixOS switch
        self.incidents = incidents
        self.window = window
        self.proposer = proposer
        self.sink = sink
        self.state = state
        self.units = units
        self.client = client if use_model else None
        self.counter = counter or TokenCounter(client)
        self.escalate = escalate
        self.budget = budget or default_budget(cfg)
        self.proposed: set[tuple[int | None, str, str, int, tuple[str, ...]]] = set()
        self.advised: set[int] = set()
        self._escalated_at: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._early_at: float | None = None
        self._last_early = -1e18
        self.last: ReviewResult | None = None
        self.running = False
        self.in_model_call = False  # tests: the review is waiting for the model
        self.reviews = 0

    # ------------------------------------------------------------------ input

    def notify(self, triggers: Sequence[Trigger], incident_of: dict[str, int] | None = None) -> None:
        """TriggerTap listener: into the L2 window; an early review on critical triggers."""
        self.window.add(triggers, incident_of)
        threshold = SEVERITY_RANK[self.cfg.review.early_severity]
        # Model-only evidence never asks for an early run (it never makes an incident urgent).
        if any(SEVERITY_RANK[t.severity] >= threshold and t.source != "model" for t in triggers):
            now = time.monotonic()
            if self._early_at is None:
                self._early_at = max(
                    now + self.cfg.review.debounce_seconds, self._last_early + self.cfg.review.early_min_interval
                )
                self._wake.set()

    def request(self) -> None:
        """Ask for a review as soon as possible (CLI/API `review --now` in-process)."""
        self._early_at = time.monotonic()
        self._wake.set()

    # ------------------------------------------------------------------ scheduler

    async def run(self) -> None:
        interval = self.cfg.intervals.review
        next_periodic = time.monotonic() + interval
        while True:
            now = time.monotonic()
            due = min(next_periodic, self._early_at if self._early_at is not None else float("inf"))
            if due > now:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=due - now)
                continue
            if self._early_at is not None and self._early_at <= now:
                reason, self._early_at, self._last_early = "early", None, now
            else:
                reason = "schedule"
            next_periodic = time.monotonic() + interval
            await self.review_once(reason)

    # ------------------------------------------------------------------ one review

    async def review_once(self, reason: str = "manual") -> ReviewResult:
        """One review; every failure becomes the recorded outcome, never an exception."""
        res = ReviewResult(reason=reason, model=getattr(getattr(self.client, "role", None), "model", None))
        self.running = True
        try:
            await self._review(res)
        except Exception as exc:  # the last line of defence: the loop must survive anything
            log.exception("review failed unexpectedly")
            res.outcome, res.error = ReviewOutcome.FAILED, f"internal error: {exc.__class__.__name__}: {exc}"[:500]
        finally:
            self.running = False
            self.in_model_call = False
        res.finished_at = datetime.now(UTC)
        try:
            res.id = await self.sink.record(res.row())
        except Exception as exc:
            log.warning("review %s could not be recorded (%s)", res.outcome, exc)
        try:
            self.window.save()
        except OSError as exc:
            log.warning("context window not saved (%s)", exc)
        self.last = res
        self.reviews += 1
        log.info(
            "review (%s): %s%s; %d finding(s), %d proposal(s); prompt %d tokens (%s cached)",
            reason,
            res.outcome,
            f" ({res.error})" if res.error else "",
            len(res.findings),
            len(res.proposals),
            res.prompt_tokens,
            f"{res.cached_share:.0%}" if res.cached_share is not None else "-",
        )
        return res

    async def _review(self, res: ReviewResult) -> None:
        from ai_sysadmin.actions.policy import is_protected

        incs = list(self.incidents())
        res.incident_ids = [i.id for i in incs if i.id is not None]
        protected = self.cfg.protected_units
        cands = {i.key: candidates_for(i, lambda u: is_protected(u, protected)) for i in incs}
        await self._propose_rollbacks(incs, cands, res)
        # Deterministic findings: NixOS advice, once per incident.
        for inc in incs:
            c = cands[inc.key]
            if c.advice and inc.id is not None and inc.id not in self.advised:
                self.advised.add(inc.id)
                res.findings.append(
                    {
                        "layer": "rules",
                        "incident": inc.id,
                        "severity": inc.severity,
                        "category": inc.category,
                        "summary": inc.title,
                        "evidence": [f"I{inc.id}"],
                        "advice": c.advice,
                    }
                )
        if self.client is not None:
            health = await self.client.health()
            if not health.ok and health.status != "unsupported":
                res.outcome = ReviewOutcome.SKIPPED
                res.error = f"review model unavailable ({health.status}: {health.detail})"[:500]
                await self._propose_candidates(incs, cands, res)
                return
        ctx: Context | None = None
        try:
            inputs = await self._inputs(incs, cands)
            ctx = await build_context(inputs, self.counter, self.budget)
            res.context_tokens, res.compaction = ctx.tokens, ctx.steps
        except ContextTooLarge as exc:
            res.outcome, res.error = ReviewOutcome.FAILED, str(exc)
        if ctx is not None and self.client is None:
            res.outcome, res.error = ReviewOutcome.SKIPPED, "no review model (deterministic candidates only)"
        elif ctx is not None:
            answer = await self._ask(ctx, res, incs)
            if answer is not None:
                res.answer = answer
                res.outcome, res.status = ReviewOutcome.OK, answer["status"]
                await self._apply(answer, ctx, res, incs, labelled(incs, cands))
        # The candidates stand beside the model's choices (issue 19): a model that chose
        # nothing, or the wrong label, does not take the rules' fix away.
        await self._propose_candidates(incs, cands, res)

    async def _inputs(self, incs: list[Incident], cands: dict[int, Candidates]) -> ContextInputs:
        from ai_sysadmin.store.knowledge import shipped_runbooks

        view = await self.units.view()
        hosts = self._reviewed_hosts(incs)
        metrics = [] if hosts else await self.state.metrics()
        per_host: dict[str, dict[str, Any]] = {}
        if hosts:
            # A hub reviews its incidents' hosts: each host's metrics and units, its own only
            # (a member's as the hub holds them), never the hub's in a member's place.
            for h in hosts:
                metrics += [{**m, "host": h} for m in await self.state.metrics(h)]
                v = await self.units.view(h)
                per_host[h] = {"available": v.available, "failed": sorted(v.failed), "reason": v.reason}
        policy = await self.state.policy()
        runbooks = shipped_runbooks()
        knowledge: list[dict[str, Any]] = []
        for inc in incs:
            for name in cands[inc.key].runbooks:
                if name in runbooks and all(k["id"] != name for k in knowledge):
                    knowledge.append(
                        {
                            "collection": "runbooks",
                            "id": name,
                            "title": _title(runbooks[name]),
                            "snippet": _fix_part(runbooks[name]),
                        }
                    )
        k = self.cfg.review.knowledge_hits
        if incs and k:
            for hit in await self.state.knowledge(" ".join(i.title for i in incs[:3]), k):
                if all(x["id"] != hit["id"] for x in knowledge):
                    knowledge.append(hit)
        choices = labelled(incs, cands)
        rows = []
        for inc in incs:
            rows.append(
                {
                    "id": inc.id if inc.id is not None else inc.key,
                    "severity": inc.severity,
                    "category": inc.category,
                    "status": inc.status,
                    "confidence": inc.confidence,
                    "title": inc.title,
                    "units": sorted(inc.all_units),
                    "triggers": [f"T{t[:8]}" for t in inc.trigger_ids[-6:]],
                    "candidates": [
                        {"label": label, "action": a, "params": p} for label, (i, a, p) in choices.items() if i is inc
                    ],
                    # A fleet incident (docs/fleet.md): the model sees where; one host's context is unchanged.
                    **({"hosts": inc.host_list} if inc.fleet else {}),
                    **({"host": inc.host} if hosts and inc.host else {}),
                }
            )
        return ContextInputs(
            protected_units=list(self.cfg.protected_units),
            incidents=rows,
            triggers=self.window.newest(),
            folded=self.window.folded,
            metrics=metrics,
            units={"available": view.available, "failed": sorted(view.failed), "reason": view.reason},
            units_by_host=per_host,
            hub=self.cfg.fleet.host_id() if hosts else None,
            policy=policy,
            knowledge=knowledge,
            autonomy=self.cfg.autonomy_level,
        )

    def _reviewed_hosts(self, incs: list[Incident]) -> list[str]:
        """On a hub: the hosts of the incidents reviewed, most severe incident first (the hub's
        own when there is none); elsewhere [] (one host, the context as it always was)."""
        if self.cfg.fleet.role != "hub":
            return []
        hosts = list(dict.fromkeys(h for i in incs for h in i.host_list if h))
        return hosts or [self.cfg.fleet.host_id()]

    async def _ask(self, ctx: Context, res: ReviewResult, incs: list[Incident]) -> dict[str, Any] | None:
        from ai_sysadmin.llm.accounting import call_context
        from ai_sysadmin.llm.errors import LLMError, ModelRequestError

        client = self.client
        assert client is not None, "asked only with a review model (review_once checks)"

        evidence = list(ctx.incident_refs) + list(ctx.trigger_refs)
        schema = answer_schema(list(ctx.incident_refs.values()), evidence, ctx.choices)
        messages = ctx.messages()
        top = incs[0].id if incs and incs[0].id is not None else None
        started = time.monotonic()
        with call_context(layer="review", incident_id=top):
            for attempt in range(1, self.cfg.review.max_attempts + 1):
                res.attempts = attempt
                self.in_model_call = True
                try:
                    out = await client.chat(
                        messages,
                        temperature=0.0,
                        max_tokens=self.cfg.roles.review.max_tokens or None,
                        response_format={
                            "type": "json_schema",
                            "json_schema": {"name": "review", "schema": schema, "strict": True},
                        },
                    )
                except ModelRequestError as exc:
                    res.outcome, res.error = ReviewOutcome.FAILED, str(exc)[:500]
                    return None
                except LLMError as exc:  # down or timed out mid-review: a recorded failure
                    res.outcome, res.error = ReviewOutcome.FAILED, f"review model failed mid-review: {exc}"[:500]
                    return None
                finally:
                    self.in_model_call = False
                res.prompt_tokens += out.prompt_tokens
                res.cached_tokens += out.cached_tokens
                res.completion_tokens += out.completion_tokens
                try:
                    answer = parse_answer(out.text, out.finish_reason, schema)
                    res.latency_s = time.monotonic() - started
                    return answer
                except InvalidAnswer as exc:
                    res.error = f"attempt {attempt}: {exc}"
                    messages = [
                        *ctx.messages(),
                        {
                            "role": "user",
                            "content": f"Your previous answer was invalid: {exc}. "
                            "Answer again with one complete, short JSON object.",
                        },
                    ]
        res.latency_s = time.monotonic() - started
        res.outcome = ReviewOutcome.FAILED
        res.error = f"no valid answer after {res.attempts} attempt(s); last: {res.error}"[:500]
        return None

    async def _apply(
        self, answer: dict[str, Any], ctx: Context, res: ReviewResult, incs: list[Incident], choices: dict[str, Choice]
    ) -> None:
        """`choices`: label -> candidate, as `labelled` numbered them for the prompt."""
        for f in answer["findings"]:
            ev = [ctx.trigger_refs.get(e, e) if e.startswith("T") else e for e in f["evidence"]]
            res.findings.append(
                {
                    "layer": "review",
                    "incident": f["incident"],
                    "severity": f["severity"],
                    "category": f["category"],
                    "summary": f["summary"],
                    "evidence": ev,
                    "advice": [],
                }
            )
        for a in answer["actions"]:
            chosen = choices.get(a["choice"])
            if chosen is None:  # the schema's enum prevents it; a stale label is ignored, never guessed
                log.warning("review: choice %r is not a candidate of this review; ignored", a["choice"])
                continue
            inc, action, params = chosen
            reason = a["reason"] or "review"
            if a["incident"] != inc.id:
                # The label names one candidate of one incident; the `incident` field is the weaker
                # signal (small models copy the first enum value).  The candidate's own incident is
                # the one whose evidence built it, so the proposal is bound there, and the mismatch
                # is kept in the reason for the person who reads it.
                reason = f"{reason} (answer named incident {a['incident']}; {a['choice']} is incident {inc.id}'s)"
            await self._propose(
                Proposal(action=action, params=dict(params), reason=reason[:300], source="review", incident_id=inc.id),
                res,
                inc,
            )
        if answer["escalate"] and self.escalate is not None:
            target = next(
                (f["incident"] for f in answer["findings"] if f["incident"] is not None), incs[0].id if incs else None
            )
            if target is not None:
                now = time.monotonic()
                if now - self._escalated_at.get(target, -1e18) >= self.cfg.review.escalate_min_interval:
                    self._escalated_at[target] = now
                    try:
                        await self.escalate(target, answer["escalate_reason"] or "review asked for a deeper look")
                        res.escalated.append(target)
                    except Exception:
                        log.exception("escalation hook failed for incident %s", target)

    async def _propose_candidates(self, incs: list[Incident], cands: dict[int, Candidates], res: ReviewResult) -> None:
        for inc in incs:
            for action, params in cands[inc.key].actions:
                await self._propose(
                    Proposal(
                        action=action,
                        params=params,
                        source="rules",
                        reason=f"candidate for {inc.category} ({inc.title})"[:300],
                        incident_id=inc.id,
                    ),
                    res,
                    inc,
                )

    async def _propose_rollbacks(self, incs: list[Incident], cands: dict[int, Candidates], res: ReviewResult) -> None:
        """An incident attributed to a switch: roll back from that generation, with the proof.  Proposed
        before the model answers (source `rules`): the model may add to it, never remove it."""
        if self.switches is None:
            return
        from ai_sysadmin.preflight.watch import proof, rollback_target

        try:
            found = await self.switches.attributions([i.id for i in incs if i.id is not None])
        except Exception as exc:  # database down: the next review proposes it
            log.warning("review: switch attributions not read (%s)", exc)
            return
        for inc in incs:
            sw = found.get(inc.id) if inc.id is not None else None
            if sw is None or sw["to_generation"] is None:
                continue
            back_to = rollback_target(self.cfg.actions.system_profile, int(sw["to_generation"]))
            if back_to != sw["from_generation"]:
                # `nix-env --rollback` goes to the generation numbered before M: only when that is the
                # one the switch came from does rolling back undo the switch.
                log.warning(
                    "review: incident %s follows switch %s -> %s, but a rollback from %s goes to %s; not proposed",
                    inc.id,
                    sw["from_generation"],
                    sw["to_generation"],
                    sw["to_generation"],
                    back_to,
                )
                continue
            params = {"from_generation": int(sw["to_generation"])}
            cands[inc.key].actions.insert(0, ("rollback_generation", params))  # the model sees it first
            await self._propose(
                Proposal(
                    action="rollback_generation",
                    params=params,
                    source="rules",
                    reason=proof(sw, list(sw["units"])),
                    incident_id=inc.id,
                ),
                res,
                inc,
            )

    async def _propose(self, p: Proposal, res: ReviewResult, inc: Incident) -> None:
        # Once per incident, again after it reopened, and again when the fault reached another
        # host: a fleet incident's proposal is one action per host (actions/proposals.py), and
        # the hosts it already has are recorded duplicates there.
        key = (
            p.incident_id,
            p.action,
            json.dumps(p.params, sort_keys=True, default=str),
            inc.reopened,
            tuple(inc.host_list),
        )
        if key in self.proposed:
            return
        self.proposed.add(key)
        try:
            outcome = await self.proposer.propose(p)
        except Exception as exc:  # the proposer's store is down: say so, keep reviewing
            res.proposals.append(
                {
                    "action": p.action,
                    "params": p.params,
                    "risk": None,
                    "source": p.source,
                    "decision": "refuse",
                    "reason": f"not recorded: {exc.__class__.__name__}",
                    "incident": p.incident_id,
                }
            )
            self.proposed.discard(key)
            return
        res.proposals.append(outcome.to_json())

    def report(self) -> dict[str, Any]:
        last = self.last
        return {
            "reviews": self.reviews,
            "running": self.running,
            "budget": self.budget,
            "last": None
            if last is None
            else {"outcome": last.outcome, "at": last.started_at.isoformat(), "error": last.error},
        }


def labelled(incs: Sequence[Incident], cands: dict[int, Candidates]) -> dict[str, Choice]:
    """Every candidate of the review, numbered "C1".."Cn" in incident order: the answer's choices."""
    out: dict[str, Choice] = {}
    for inc in incs:
        for action, params in cands[inc.key].actions:
            out[choice_label(len(out) + 1)] = (inc, action, params)
    return out


def _title(md: str) -> str:
    return next((ln[2:].strip() for ln in md.splitlines() if ln.startswith("# ")), "")


def _fix_part(md: str) -> str:
    """The runbook's **Fix** section (what the review can act on), else its start; one line."""
    i = md.find("**Fix**")
    text = md[i + len("**Fix**") :] if i >= 0 else md
    return " ".join(text.split())[:RUNBOOK_CHARS]
