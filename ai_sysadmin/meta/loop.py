"""The L4 investigation: an OpenAI tool-calling loop over read-only tools, ending in a diagnosis.

    inv = build_investigator(cfg, client=meta_client, pool=pool, proposer=actions, knowledge=kb)  # compose/
    result = await inv.investigate("why is nginx down?", incident_id=7, on_event=show)

The loop does not depend on the model calling tools well:

* at most `meta.max_steps` model turns with tools offered, inside `meta.deadline_seconds`
  (the answer phase keeps a reserve of the deadline);
* a call identical to an earlier one (name and arguments) is refused with a message
  telling the model to move on; two refusals in a row end the tool phase;
* unknown tools, invalid arguments and undecodable calls come back to the model as
  error results, and the loop goes on;
* then one turn with the tools withheld: the answer (streamed), and a `response_format`
  json_schema diagnosis, checked against what the tools really returned; when the model
  gives no usable diagnosis a deterministic low-confidence one is recorded instead;
* a model server that goes away mid-loop ends the investigation as `failed`, recorded.

Every tool result enters the conversation through `envelope.wrap`; the question and
chat history are neutralised (they cannot forge template tokens).  Every model call is
tagged `call_context(layer="meta", incident_id=...)`.  The result is stored as a
finding (layer meta) with a bounded transcript, and proposed actions go through the
Proposer only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ai_sysadmin import envelope
from ai_sysadmin.actions.catalog import load_catalog
from ai_sysadmin.actions.types import Proposal, ProposalOutcome, Proposer
from ai_sysadmin.config import Config
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.llm.accounting import call_context
from ai_sysadmin.llm.errors import BadModelOutput, LLMError
from ai_sysadmin.meta import diagnosis as diag
from ai_sysadmin.meta.findings import FindingsStore
from ai_sysadmin.meta.opening import opening_calls
from ai_sysadmin.meta.proposing import propose
from ai_sysadmin.meta.tools import Toolset
from ai_sysadmin.meta.tools.proposals import collect_proposals
from ai_sysadmin.meta.transcript import bound_transcript
from ai_sysadmin.meta.turn import TurnCall, tool_turn
from ai_sysadmin.store.knowledge import KnowledgeSearch

log = logging.getLogger(__name__)

# turn_delta: text the model writes during a tool turn, live; it is thinking aloud when the turn
# then calls tools, and the answer when it does not (then also sent whole as an answer_delta).


class EventKind(StrEnum):
    """What an investigation event carries (the API streams these words)."""

    STEP_START = "step_start"
    STEP_RESULT = "step_result"
    TURN_DELTA = "turn_delta"
    ANSWER_DELTA = "answer_delta"
    PROPOSAL = "proposal"
    DIAGNOSIS = "diagnosis"
    ERROR = "error"


class Outcome(StrEnum):
    """How an investigation ended, from best to worst (stored as these words in findings)."""

    OK = "ok"
    DEGRADED = "degraded"
    DEADLINE = "deadline"
    FAILED = "failed"


EVENT_KINDS = tuple(EventKind)
OUTCOMES = tuple(Outcome)
MAX_REFUSALS_IN_A_ROW = 2
ANSWER_RESERVE_SHARE = 0.3  # of the deadline, kept for the answer and the diagnosis
ANSWER_RESERVE_MAX = 180.0

SYSTEM_PROMPT = (
    "You are the meta analysis layer of ai-sysadmin, investigating a NixOS host for its administrator. "
    "Use the read-only tools to collect evidence, one focused call at a time; every tool result has an id "
    "(c1, c2, ...) that you cite as evidence. You cannot run commands. To fix something, call propose_action "
    "with an action from the catalog; a policy decides whether it runs. When you know enough, stop calling "
    "tools and answer: the root cause, the evidence (tool call ids, trigger and incident ids), and what the "
    "administrator should check."
)
# What the root cause must name: a small model otherwise diagnoses its own tool calls
# ("the journal query returns no entries") instead of the host (docs/eval.md).
ROOT_CAUSE_RULE = (
    "The root cause is what is wrong on the host: name the unit at fault (like nginx.service) or the "
    "resource (disk, memory, certificate, clock, network, NixOS generation) and what happened to it; "
    "a tool's error or an empty result is never the root cause."
)
ANSWER_PROMPT = (
    "Stop using tools now. Answer the question in a few sentences: the most likely root cause, the evidence "
    "(cite tool call ids like c1, trigger or incident ids), and what the administrator should check. " + ROOT_CAUSE_RULE
)
DIAGNOSIS_PROMPT = (
    "Now give the diagnosis as one JSON object: evidence (kind tool_call with ids like c1, or trigger, "
    "incident, knowledge ids you were shown; each with a note of what it shows), root_cause (one sentence "
    "read from that evidence), confidence (0 to 1), severity, admin_checks, and proposed_actions (each a "
    "reason, then a catalog action id with its params; empty if none would help). " + ROOT_CAUSE_RULE
)


@dataclass(frozen=True)
class Event:
    kind: EventKind
    data: dict[str, Any]


@dataclass
class Step:
    call_id: str
    tool: str
    arguments: Any
    ok: bool
    summary: str
    truncated: bool = False
    refused: bool = False
    latency_s: float = 0.0
    turn: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "tool": self.tool,
            "arguments": self.arguments,
            "ok": self.ok,
            "summary": self.summary,
            "truncated": self.truncated,
            "refused": self.refused,
            "latency_s": round(self.latency_s, 4),
            "turn": self.turn,
        }


@dataclass
class Investigation:
    question: str
    incident_id: int | None = None
    answer: str = ""
    diagnosis: dict[str, Any] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    proposals: list[ProposalOutcome] = field(default_factory=list)
    finding_id: int | None = None
    outcome: Outcome = Outcome.OK
    error: str | None = None
    turns: list[dict[str, Any]] = field(default_factory=list)  # per model call: kind, latency_s, outcome
    latency_s: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)
    seen_ids: dict[str, set[str]] = field(default_factory=dict, repr=False)  # evidence ids tools returned
    call_ids: dict[str, str] = field(default_factory=dict, repr=False)  # a call's identity -> its call id
    call_errors: dict[str, str] = field(default_factory=dict, repr=False)  # ... -> its error, when it failed

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "incident": self.incident_id,
            "answer": self.answer,
            "diagnosis": self.diagnosis,
            "steps": [s.to_json() for s in self.steps],
            "proposals": [p.to_json() for p in self.proposals],
            "finding_id": self.finding_id,
            "outcome": self.outcome,
            "error": self.error,
            "turns": self.turns,
            "latency_s": round(self.latency_s, 3),
        }


OnEvent = Callable[[Event], Awaitable[None]]


class _Stop(Exception):
    """The tool phase ends (deadline, model gone); `outcome` says how."""

    def __init__(self, outcome: Outcome, message: str):
        self.outcome = outcome
        super().__init__(message)


class Investigator:
    def __init__(
        self,
        cfg: Config,
        client: LLMClient,
        tools: Toolset,
        proposer: Proposer | None,
        *,
        incident_store: FindingsStore | None = None,
        kb: KnowledgeSearch | None = None,
        about: str | None = None,
    ):
        """`about`: which host the tools read, when it is not simply this one (a fleet member's
        incident investigated on the hub: compose/investigator.py)."""
        self.cfg = cfg
        self.about = about
        self.m = cfg.meta
        self.client = client  # of the meta role
        self.tools = tools
        self.proposer = proposer  # None: proposals are refused
        self.incident_store = incident_store  # None: nothing is stored
        context = tools.context
        self.kb = kb if kb is not None else (context.kb if context is not None else None)
        if context is not None and context.proposer is None:
            context.proposer = proposer
        # The diagnosis may only propose catalog actions with their own parameters.
        self.catalog = load_catalog()
        self.diagnosis_schema = diag.diagnosis_schema(self.catalog)

    # ------------------------------------------------------------------ the loop

    async def investigate(
        self,
        question: str,
        *,
        history: list[dict] | None = None,
        incident_id: int | None = None,
        on_event: OnEvent | None = None,
        stream_text: bool = False,
    ) -> Investigation:
        """`stream_text`: tool turns are streamed too (turn_delta events), so what the model writes in
        one is seen as it is written -- the agent API shows it in the live reasoning block."""
        started = time.monotonic()
        inv = Investigation(question=question, incident_id=incident_id)
        emit = _Emitter(on_event)
        deadline = started + self.m.deadline_seconds
        reserve = min(self.m.deadline_seconds * ANSWER_RESERVE_SHARE, ANSWER_RESERVE_MAX)
        with call_context(layer="meta", incident_id=incident_id), collect_proposals() as proposed:
            known = await self._known_ids(incident_id)
            incident = known.get("_incident")
            messages = await self._opening(question, history or [], incident_id, known)
            final_text: str | None = None
            try:
                if incident is not None and self.m.opening_calls:
                    await self._opening_evidence(inv, messages, incident, emit)
                final_text = await self._tool_phase(
                    inv, messages, emit, proposed, tool_deadline=deadline - reserve, stream_text=stream_text
                )
            except _Stop as stop:
                inv.outcome, inv.error = stop.outcome, str(stop)
                await emit(Event(EventKind.ERROR, {"outcome": stop.outcome, "message": str(stop)}))
            await self._answer_phase(inv, messages, final_text, emit, deadline)
            known["tool_call"] = {s.call_id for s in inv.steps if s.ok}
            await self._diagnosis_phase(inv, messages, known, emit, deadline, self._schema_for(incident))
            inv.latency_s = time.monotonic() - started
            inv.messages = messages
            await self._record(inv, emit)
        await emit(Event(EventKind.DIAGNOSIS, inv.diagnosis))  # the final object, after its proposals
        return inv

    async def _opening(
        self, question: str, history: list[dict], incident_id: int | None, known: dict[str, Any]
    ) -> list[dict[str, Any]]:
        system = (
            f"{SYSTEM_PROMPT}\n{self.about}\n{envelope.SYSTEM_RULE}"
            if self.about
            else f"{SYSTEM_PROMPT}\n{envelope.SYSTEM_RULE}"
        )
        messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for turn in history[-20:]:
            role = turn.get("role")
            if role in ("user", "assistant") and isinstance(turn.get("content"), str):
                messages.append({"role": role, "content": envelope.neutralise(turn["content"])[:4000]})
        context = []
        incident = known.pop("_incident", None)
        if incident is not None:
            context.append(envelope.wrap(_incident_text(incident), "incident"))
        hits = await self._knowledge(question, incident)
        if hits:
            lines = [f"{h.collection}/{h.id}: {h.snippet}" for h in hits]
            known["knowledge"] |= {f"{h.collection}/{h.id}" for h in hits} | {h.id for h in hits}
            context.append("Related knowledge (cite as knowledge ids):\n" + envelope.wrap_lines(lines, "knowledge"))
        text = envelope.neutralise(question)
        if context:
            text += "\n\n" + "\n\n".join(context)
        messages.append({"role": "user", "content": text})
        return messages

    async def _tool_phase(
        self,
        inv: Investigation,
        messages: list[dict[str, Any]],
        emit: _Emitter,
        proposed: list[ProposalOutcome],
        tool_deadline: float,
        stream_text: bool = False,
    ) -> str | None:
        """Run tool turns; returns the model's own final text when it stopped calling tools."""
        refusals_in_a_row = 0
        definitions = self.tools.definitions()
        streamed: list[str] = []  # this turn's text, already shown as turn_delta events

        async def on_text(text: str) -> None:
            streamed.append(text)
            await emit(Event(EventKind.TURN_DELTA, {"text": text}))

        for turn_no in range(1, self.m.max_steps + 1):
            if streamed:  # text of an earlier turn that then called tools: keep it apart
                await emit(Event(EventKind.TURN_DELTA, {"text": "\n\n"}))
                streamed.clear()
            remaining = tool_deadline - time.monotonic()
            if remaining <= 0:
                raise _Stop(Outcome.DEADLINE, f"deadline reached after {turn_no - 1} step(s)")
            request = messages + ([{"role": "assistant", "content": self.m.prefill}] if self.m.prefill else [])
            t0 = time.monotonic()
            try:
                turn = await asyncio.wait_for(
                    tool_turn(
                        self.client,
                        request,
                        definitions,
                        tool_choice=self.m.tool_choice,
                        max_tokens=self.m.step_max_tokens,
                        on_text=on_text if stream_text else None,
                    ),
                    remaining,
                )
            except TimeoutError:
                inv.turns.append(_turn("tools", t0, "timeout"))
                raise _Stop(Outcome.DEADLINE, f"deadline reached during step {turn_no}") from None
            except BadModelOutput as exc:
                # An undecodable call (unknown tool, arguments not JSON): tell the model, go on.
                inv.turns.append(_turn("tools", t0, "bad_output"))
                call_id = f"c{len(inv.steps) + 1}"
                step = Step(call_id, "(invalid call)", None, False, f"error: {exc}"[:200], turn=turn_no)
                inv.steps.append(step)
                await emit(
                    Event(
                        EventKind.STEP_START,
                        {"call_id": call_id, "tool": step.tool, "arguments": {"raw": (exc.raw or "")[:200]}},
                    )
                )
                await emit(Event(EventKind.STEP_RESULT, _result_data(step)))
                messages.append(
                    {
                        "role": "user",
                        "content": (
                            f"Your last tool call ({call_id}) could not be used: "
                            + envelope.wrap(str(exc) + (f" (raw: {exc.raw[:300]})" if exc.raw else ""), "error")
                            + "\nCall one of the listed tools with a JSON object "
                            "of arguments, or answer without tools."
                        ),
                    }
                )
                continue
            except LLMError as exc:
                inv.turns.append(_turn("tools", t0, "error"))
                raise _Stop(Outcome.FAILED, f"meta model failed at step {turn_no}: {exc}") from None
            inv.turns.append(_turn("tools", t0, "ok"))
            if not turn.calls and (turn.finish_reason == "length" or self.m.tool_choice == "required"):
                # Cut off, or a required call not made: not an answer. Say so and go on.
                call_id = f"c{len(inv.steps) + 1}"
                why = (
                    "your turn was cut off at the token limit"
                    if turn.finish_reason == "length"
                    else "a tool call was required and none was made"
                )
                step = Step(call_id, "(invalid call)", None, False, f"error: {why}", turn=turn_no)
                inv.steps.append(step)
                await emit(Event(EventKind.STEP_START, {"call_id": call_id, "tool": step.tool, "arguments": {}}))
                await emit(Event(EventKind.STEP_RESULT, _result_data(step)))
                messages.append(
                    {
                        "role": "user",
                        "content": f"Your last turn ({call_id}) could not be used: {why}. "
                        "Call one tool with short arguments, or answer without tools.",
                    }
                )
                continue
            if not turn.calls:
                return (turn.content or "").strip() or None
            calls: list[tuple[str, TurnCall]] = []
            for call in turn.calls:
                calls.append((f"c{len(inv.steps) + len(calls) + 1}", call))
            messages.append(
                {
                    "role": "assistant",
                    "content": turn.content or "",
                    "tool_calls": [
                        {
                            "id": cid,
                            "type": "function",
                            # A broken call is echoed with empty arguments: the server re-parses this history.
                            "function": {
                                "name": c.name or "invalid",
                                "arguments": json.dumps(c.arguments, sort_keys=True) if c.error is None else "{}",
                            },
                        }
                        for cid, c in calls
                    ],
                }
            )
            refused_all = True
            for index, (cid, call) in enumerate(calls):
                key = _call_key(call.name, call.arguments) if call.error is None else call.name + "\x00" + call.raw
                shown = call.arguments if call.error is None else {"raw": call.raw[:200]}
                await emit(Event(EventKind.STEP_START, {"call_id": cid, "tool": call.name, "arguments": shown}))
                if call.error is not None:
                    step = Step(
                        cid,
                        call.name or "(invalid call)",
                        {"raw": call.raw[:200]},
                        False,
                        f"error: {call.error}"[:200],
                        turn=turn_no,
                    )
                    text = (
                        f"error: {call.error}. Send the arguments as one complete JSON object, "
                        "and fewer calls per turn."
                    )
                elif index >= self.m.max_calls_per_step:
                    step, text = self._refused(
                        cid,
                        call,
                        turn_no,
                        f"at most {self.m.max_calls_per_step} tool calls per turn; "
                        "ask again in your next turn if you still need it",
                    )
                elif key in inv.call_ids:
                    step, text = self._refused(
                        cid, call, turn_no, _repeat_reason(inv.call_ids[key], inv.call_errors.get(key))
                    )
                else:
                    refused_all = False
                    step, text = await self._run(inv, cid, call.name, call.arguments, turn_no)
                inv.steps.append(step)
                messages.append(tool_message(cid, call.name, text, self.tools.max_chars))
                await emit(Event(EventKind.STEP_RESULT, _result_data(step)))
            await self._emit_new_proposals(inv, emit, proposed)
            refusals_in_a_row = refusals_in_a_row + 1 if refused_all else 0
            if refusals_in_a_row >= MAX_REFUSALS_IN_A_ROW:
                return None  # the model is looping: make it answer
        return None

    async def _run(self, inv: Investigation, cid: str, name: str, arguments: Any, turn_no: int) -> tuple[Step, str]:
        """Run one tool call (the model's, or an opening one); the step and the text the model gets."""
        key = _call_key(name, arguments)
        inv.call_ids[key] = cid
        result = await self.tools.call(name, arguments)
        if not result.ok:
            inv.call_errors[key] = result.summary
        self._collect_ids(result, inv)
        step = Step(
            cid, name, arguments, result.ok, result.summary, result.truncated, latency_s=result.latency_s, turn=turn_no
        )
        return step, result.text

    async def _opening_evidence(
        self, inv: Investigation, messages: list[dict[str, Any]], incident: dict[str, Any], emit: _Emitter
    ) -> None:
        """The incident's first reads (meta/opening.py), made before the model's first turn and shown
        to it as calls of its own (turn 0): it cites them and is refused if it repeats them."""
        calls = opening_calls(incident, frozenset(self.tools.names))
        if not calls:
            return
        ids = [f"c{len(inv.steps) + n}" for n in range(1, len(calls) + 1)]
        messages.append(
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": name, "arguments": json.dumps(args, sort_keys=True)},
                    }
                    for cid, (name, args) in zip(ids, calls, strict=True)
                ],
            }
        )
        for cid, (name, args) in zip(ids, calls, strict=True):
            await emit(Event(EventKind.STEP_START, {"call_id": cid, "tool": name, "arguments": args}))
            step, text = await self._run(inv, cid, name, args, 0)
            inv.steps.append(step)
            messages.append(tool_message(cid, name, text, self.tools.max_chars))
            await emit(Event(EventKind.STEP_RESULT, _result_data(step)))

    def _refused(self, cid: str, call: Any, turn_no: int, why: str) -> tuple[Step, str]:
        return (
            Step(cid, call.name, call.arguments, False, f"refused: {why}"[:200], refused=True, turn=turn_no),
            f"refused: {why}.",
        )

    def _collect_ids(self, result: Any, inv: Investigation) -> None:
        data = result.data
        if isinstance(data, dict) and isinstance(data.get("evidence_ids"), dict):
            for kind, ids in data["evidence_ids"].items():
                inv.seen_ids.setdefault(str(kind), set()).update(str(i) for i in ids)

    async def _emit_new_proposals(self, inv: Investigation, emit: _Emitter, proposed: list[ProposalOutcome]) -> None:
        """Move what propose_action proposed in this turn (this investigation's collector) into `inv`."""
        while proposed:
            outcome = proposed.pop(0)
            inv.proposals.append(outcome)
            await emit(Event(EventKind.PROPOSAL, outcome.to_json()))

    async def _answer_phase(
        self,
        inv: Investigation,
        messages: list[dict[str, Any]],
        final_text: str | None,
        emit: _Emitter,
        deadline: float,
    ) -> None:
        if final_text:
            inv.answer = final_text
            await emit(Event(EventKind.ANSWER_DELTA, {"text": final_text}))
            messages.append({"role": "assistant", "content": final_text})
            return
        if inv.outcome == Outcome.FAILED or self.m.answer_max_tokens == 0:
            return  # no prose answer: the diagnosis phase renders one
        messages.append({"role": "user", "content": ANSWER_PROMPT})
        t0 = time.monotonic()
        parts: list[str] = []
        try:
            async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                async for delta in self.client.stream(messages, max_tokens=self.m.answer_max_tokens):
                    parts.append(delta)
                    await emit(Event(EventKind.ANSWER_DELTA, {"text": delta}))
            inv.turns.append(_turn("stream", t0, "ok"))
        except TimeoutError:
            inv.turns.append(_turn("stream", t0, "timeout"))
            self._degrade(inv, Outcome.DEADLINE, "deadline reached while answering")
        except LLMError as exc:
            inv.turns.append(_turn("stream", t0, "error"))
            self._degrade(inv, Outcome.FAILED, f"meta model failed while answering: {exc}")
        inv.answer = "".join(parts).strip()
        messages.append({"role": "assistant", "content": inv.answer})

    def _schema_for(self, incident: dict[str, Any] | None) -> dict[str, Any]:
        """The diagnosis schema: for an incident whose supported actions are known, its actions
        choose among those and notify; otherwise among the whole catalog."""
        supported = (incident or {}).get("candidate_actions")
        if not isinstance(supported, list | tuple):
            return self.diagnosis_schema
        # As store/incidents.incident_evidence: a switch's incident also supports its rollback.
        switched = ["rollback_generation"] if (incident or {}).get("switched") else []
        return diag.diagnosis_schema(self.catalog, only=[*(str(a) for a in supported), *switched])

    async def _diagnosis_phase(
        self,
        inv: Investigation,
        messages: list[dict[str, Any]],
        known: dict[str, Any],
        emit: _Emitter,
        deadline: float,
        schema: dict[str, Any],
    ) -> None:
        for kind, ids in inv.seen_ids.items():
            known.setdefault(kind, set()).update(ids)
        severity = known.pop("_severity", {"info"})
        fallback_severity = next(iter(severity)) if severity else "info"
        why = None
        if inv.outcome == Outcome.FAILED:
            why = inv.error or "the meta model failed"
        else:
            t0 = time.monotonic()
            try:
                obj = await asyncio.wait_for(
                    self.client.structured(
                        [*messages, {"role": "user", "content": DIAGNOSIS_PROMPT}],
                        schema,
                        name="diagnosis",
                        max_tokens=self.m.diagnosis_max_tokens,
                    ),
                    max(1.0, deadline - time.monotonic()),
                )
                inv.turns.append(_turn("structured", t0, "ok"))
                inv.diagnosis = diag.check(obj, known)
            except TimeoutError:
                inv.turns.append(_turn("structured", t0, "timeout"))
                why = "the deadline passed before the model gave a diagnosis"
                self._degrade(inv, Outcome.DEADLINE, why)
            except LLMError as exc:
                inv.turns.append(_turn("structured", t0, "error"))
                why = f"the model gave no usable diagnosis ({exc})"
                self._degrade(inv, Outcome.FAILED if not isinstance(exc, BadModelOutput) else Outcome.DEGRADED, why)
        if why is not None:
            inv.diagnosis = diag.fallback(inv.question, [s.to_json() for s in inv.steps], why, fallback_severity)
        if not inv.answer:
            inv.answer = diag.as_text(inv.diagnosis)
            await emit(Event(EventKind.ANSWER_DELTA, {"text": inv.answer}))

    def _degrade(self, inv: Investigation, outcome: Outcome, message: str) -> None:
        rank = list(Outcome).index  # from best to worst
        if rank(outcome) > rank(inv.outcome):
            inv.outcome = outcome
        inv.error = inv.error or message

    # ------------------------------------------------------------------ context and records

    async def _known_ids(self, incident_id: int | None) -> dict[str, Any]:
        known: dict[str, Any] = {"tool_call": set(), "trigger": set(), "incident": set(), "knowledge": set()}
        if incident_id is None or self.incident_store is None:
            return known
        try:
            incident = await self.incident_store.incident(incident_id)
        except Exception as exc:  # database down: investigate without the incident's context
            log.warning("meta: cannot read incident %s: %s", incident_id, exc)
            return known
        if incident is not None:
            known["incident"].add(str(incident_id))
            known["trigger"] |= {str(t["id"]) for t in incident.get("triggers", [])}
            known["_incident"] = incident
            known["_severity"] = {incident.get("severity") or "info"}
        return known

    async def _knowledge(self, question: str, incident: dict[str, Any] | None) -> list[Any]:
        if self.kb is None or self.m.knowledge_hits <= 0:
            return []
        text = question if incident is None else f"{incident.get('title', '')}\n{question}"
        try:
            return await self.kb.search(text, k=self.m.knowledge_hits)
        except Exception as exc:  # knowledge is context, never a reason to fail
            log.warning("meta: knowledge search failed: %s", exc)
            return []

    async def _record(self, inv: Investigation, emit: _Emitter) -> None:
        finding: dict[str, Any] = {}
        if self.incident_store is not None:
            finding = self._finding_detail(inv)
            try:
                inv.finding_id = await self.incident_store.record(
                    inv.incident_id,
                    inv.diagnosis.get("severity", "info"),
                    "meta: " + inv.diagnosis.get("root_cause", "")[:200],
                    finding,
                )
            except Exception as exc:
                log.warning("meta: cannot store the finding: %s", exc)
                self._degrade(inv, Outcome.DEGRADED, f"finding not stored: {exc}")
        await self._propose_diagnosis_actions(inv, emit)
        if inv.finding_id is not None and self.incident_store is not None:
            finding["proposals"] = [p.to_json() for p in inv.proposals]
            try:
                await self.incident_store.update(inv.finding_id, finding)
            except Exception as exc:
                log.warning("meta: cannot update finding %s: %s", inv.finding_id, exc)

    def _finding_detail(self, inv: Investigation) -> dict[str, Any]:
        return {
            "question": inv.question[:2000],
            "answer": inv.answer[:8000],
            "diagnosis": inv.diagnosis,
            "outcome": inv.outcome,
            "error": inv.error,
            "steps": [s.to_json() for s in inv.steps],
            "proposals": [p.to_json() for p in inv.proposals],
            "turns": inv.turns,
            "latency_s": round(inv.latency_s, 3),
            "transcript": bound_transcript(inv.messages, self.m.transcript_max_chars),
        }

    async def _propose_diagnosis_actions(self, inv: Investigation, emit: _Emitter) -> None:
        done = {(p.action, json.dumps(p.params, sort_keys=True)) for p in inv.proposals}
        for item in inv.diagnosis.get("proposed_actions", [])[:3]:
            key = (item.get("action", ""), json.dumps(item.get("params", {}), sort_keys=True))
            if key in done:
                continue
            done.add(key)
            outcome = await propose(
                self.proposer,
                Proposal(
                    action=str(item.get("action", "")),
                    params=dict(item.get("params") or {}),
                    reason=str(item.get("reason", ""))[:500],
                    source="meta",
                    incident_id=inv.incident_id,
                    finding_id=inv.finding_id,
                ),
            )
            inv.proposals.append(outcome)
            await emit(Event(EventKind.PROPOSAL, outcome.to_json()))


class _Emitter:
    """Calls on_event; a failing callback (a client gone) stops events, never the investigation."""

    def __init__(self, on_event: OnEvent | None):
        self._on_event = on_event

    async def __call__(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            await self._on_event(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("meta: event callback failed (%s); no more events for this investigation", exc)
            self._on_event = None


def tool_message(call_id: str, tool: str, text: str, max_chars: int) -> dict[str, Any]:
    """The conversation message carrying one tool result: always one untrusted-data envelope."""
    # The budget was applied before; the envelope's own bound only catches what escaping added.
    return {
        "role": "tool",
        "tool_call_id": call_id,
        "content": f"[{call_id}] " + envelope.wrap(text, f"tool:{tool}", max_chars=max_chars + 1000),
    }


def _call_key(name: str, arguments: Any) -> str:
    """A call's identity: the same tool with the same arguments is a repeat."""
    return name + "\x00" + json.dumps(arguments, sort_keys=True)


def _repeat_reason(earlier: str, error: str | None) -> str:
    if error is None:
        return (
            f"identical to {earlier} (same tool and arguments); its result is above. Move on: use a "
            "different tool or different arguments, or give your answer"
        )
    # Small models repeat a call that failed word for word; say that it failed, and why, again.
    return f"identical to {earlier}, which failed ({error}); change the arguments the error names, or use another tool"


def _turn(kind: str, t0: float, outcome: str) -> dict[str, Any]:
    return {"kind": kind, "latency_s": round(time.monotonic() - t0, 4), "outcome": outcome}


def _result_data(step: Step) -> dict[str, Any]:
    return {
        "call_id": step.call_id,
        "tool": step.tool,
        "ok": step.ok,
        "summary": step.summary,
        "truncated": step.truncated,
    }


def _incident_text(incident: dict[str, Any]) -> str:
    lines = [
        f"incident {incident['id']}: {incident.get('title')} (status {incident.get('status')}, "
        f"severity {incident.get('severity')}, category {incident.get('category')}, unit {incident.get('unit')})"
    ]
    if incident.get("summary"):
        lines.append(f"summary: {incident['summary']}")
    for t in incident.get("triggers", [])[:20]:
        lines.append(
            f"trigger {t['id']}: {t.get('severity')} x{t.get('count')} {t.get('source')} "
            f"{t.get('unit') or ''}: {t.get('template')}"
        )
    for f in incident.get("findings", [])[-5:]:
        lines.append(f"finding {f['id']} ({f.get('layer')}): {f.get('title')}")
    return "\n".join(lines)
