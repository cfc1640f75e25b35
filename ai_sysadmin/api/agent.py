"""The `ai-sysadmin` model: a chat turn runs the L4 investigation and streams its answer.

What the client gets, streamed as it happens:

* the investigation steps as `reasoning_content` deltas -- what llama.cpp sends for a
  thinking model, and what Open WebUI (0.12, utils/middleware.py) renders live as a
  folded "Thinking" block, closed as soon as answer text arrives:

      Investigating with read-only tools ...
      - `c1` **unit_status**(unit=nginx.service) → ok: failed since 10:02 ...

* what the meta model writes during a tool turn, live in the same block (it is thinking
  aloud before a tool call; when it is the answer instead, the answer follows whole);
* the answer as `content` deltas, token by token as the meta model writes it, then the
  proposals:

      **Proposed actions** (approve with the CLI or POST /api/v1/actions/ID/approve, never in chat)
      - action #12 restart_unit {"unit": "nginx.service"}: risk low, policy decision queue ...

* a failed investigation (the meta model unreachable, gone silent, or failing) ends
  as an error: an OpenAI-shaped error event and `[DONE]` in a stream, an error status
  otherwise -- never as answer text that looks like a diagnosis.

The same as data: every streamed chunk of an event carries `ai_sysadmin: {event, data}`;
a non-streamed answer carries `message.reasoning_content` and
`ai_sysadmin: {steps, proposals, diagnosis, finding_id, outcome}`.

The client's own `tools` are ignored: the agent has its own, read-only ones.  Approval
is never possible through chat text: this module only reads the question and history,
and the investigator can only *propose* (policy decides); nothing here calls
approvals.  The question and history reach the model neutralised by the investigator
(the untrusted-data envelope).  A client that disconnects cancels the investigation.
"""

from __future__ import annotations

import contextvars
import html
import json
import logging
import re
import time
import uuid
from typing import Any

from aiohttp import web

from ai_sysadmin.actions.types import ProposalOutcome
from ai_sysadmin.api import requestlog
from ai_sysadmin.api.errors import ApiError, bad_field, sse_error
from ai_sysadmin.api.relay import SSE_HEADERS
from ai_sysadmin.api.state import AGENT_MODEL, ApiState
from ai_sysadmin.api.validate import wants_stream

log = logging.getLogger(__name__)

_DETAILS_RE = re.compile(r"<details\b[^>]*>.*?</details>\s*", re.DOTALL)  # also Open WebUI's reasoning blocks
_PROPOSALS_RE = re.compile(r"\n*\*\*Proposed actions\*\*.*\Z", re.DOTALL)
SUMMARY_CHARS = 160
ARGS_CHARS = 120

# Token totals of the model calls made for the current request (LLMClient's on_call hook).
_usage: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("ai_sysadmin_api_usage", default=None)


class Agent:
    """The `ai-sysadmin` model's handler.  Its parts (the investigator, the meta client whose
    calls reach `on_call`, the accounting) are built by compose/api.py; `investigator` None:
    listed but answering 503 with `error`."""

    def __init__(self, st: ApiState, *, recorder: Any = None):
        self.st = st
        self.recorder = recorder  # store.llm_calls.LLMCallRecorder, or None: calls are not recorded
        self.investigator: Any = None
        self.error: str | None = None

    def on_call(self, record: Any) -> None:
        """The meta client's on_call: the request's token tally, and llm_calls like the service (layer meta)."""
        _count_tokens(record)
        if self.recorder is not None:
            self.recorder(record)

    async def complete(self, request: web.Request, data: dict[str, Any], started: float) -> web.StreamResponse:
        if self.investigator is None:
            raise ApiError(503, f"the ai-sysadmin agent is unavailable: {self.error}", code="agent_unavailable")
        question, history = split_conversation(data["messages"])
        stream = wants_stream(data)
        opts = data.get("stream_options") or {}
        include_usage = bool(opts.get("include_usage")) if isinstance(opts, dict) else False
        render = Renderer()
        tally = [0, 0]
        _usage.set(tally)
        requestlog.note(request, model=AGENT_MODEL)
        if not stream:
            inv = await self.investigator.investigate(question, history=history, on_event=render.collect)
            requestlog.note(request, tokens=(tally[0], tally[1]))
            failure = render.failure(inv)
            if failure is not None:
                raise investigation_failed(failure)
            text = render.finish(inv)
            return web.json_response(_completion(render.id, text, render.reasoning_text(), inv, tally))
        out = web.StreamResponse(status=200, headers=SSE_HEADERS)
        await out.prepare(request)
        await out.write(_sse(_chunk(render.id, {"role": "assistant", "content": ""})))
        # Shown at once: the first model turn can take tens of seconds on a CPU.
        await out.write(_sse(_chunk(render.id, {"reasoning_content": render.opening()})))
        first = [True]

        async def send(event: Any) -> None:
            reasoning, text = render.on_event(event.kind, event.data)
            delta = {**({"reasoning_content": reasoning} if reasoning else {}), **({"content": text} if text else {})}
            chunk = _chunk(render.id, delta, extra={"event": event.kind, "data": event.data})
            if first[0] and text:
                self.st.metrics.ttft.labels(AGENT_MODEL).observe(time.monotonic() - started)
                first[0] = False
            await out.write(_sse(chunk))

        inv = await self.investigator.investigate(question, history=history, on_event=send, stream_text=True)
        self.st.metrics.tokens_from(AGENT_MODEL, (tally[0], tally[1]))
        requestlog.note(request, tokens=(tally[0], tally[1]))
        summary = {"event": "done", "data": _summary(inv)}
        failure = render.failure(inv)
        try:
            if failure is not None:
                requestlog.note(request, error=failure)
                await out.write(_sse(_chunk(render.id, {}, extra=summary)))
                await out.write(sse_error(failure, "upstream_error", "investigation_failed") + b"data: [DONE]\n\n")
                await out.write_eof()
                return out
            tail = render.finish(inv, streamed=True)
            await out.write(_sse(_chunk(render.id, {"content": tail} if tail else {}, extra=summary)))
            await out.write(_sse(_chunk(render.id, {}, finish="stop")))
            if include_usage:
                await out.write(_sse({**_chunk(render.id, {}), "choices": [], "usage": _usage_json(tally)}))
            await out.write(b"data: [DONE]\n\n")
            await out.write_eof()
        except ConnectionError:
            pass  # the client left; the investigation is recorded anyway
        return out


def investigation_failed(message: str) -> ApiError:
    return ApiError(502, message, code="investigation_failed")


def _count_tokens(record: Any) -> None:
    tally = _usage.get()
    if tally is not None:
        tally[0] += record.prompt_tokens
        tally[1] += record.completion_tokens


def split_conversation(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """(question, earlier turns): the last user message, and user/assistant text before it."""
    last = messages[-1]
    if last.get("role") != "user":
        raise bad_field(f"messages[{len(messages) - 1}].role", "the last message must be the user's question")
    question = _text(last.get("content")).strip()
    if not question:
        raise bad_field(f"messages[{len(messages) - 1}].content", "the question is empty")
    history = []
    for m in messages[:-1]:
        if m.get("role") not in ("user", "assistant"):
            continue
        text = _text(m.get("content"))
        if m.get("role") == "assistant":
            # Our own rendering of earlier answers: keep the answer, drop the step log.
            text = _PROPOSALS_RE.sub("", _DETAILS_RE.sub("", text))
        if text.strip():
            history.append({"role": m["role"], "content": text.strip()})
    return question, history


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


class Renderer:
    """Turns investigation events into (reasoning, content) text for the client."""

    def __init__(self) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.reasoning: list[str] = []
        self.parts: list[str] = []
        self.started: set[str] = set()
        self.steps = 0
        self.failed: str | None = None  # the error of a failed investigation (the answer after it is a fallback)

    async def collect(self, event: Any) -> None:
        reasoning, text = self.on_event(event.kind, event.data)
        if reasoning:
            self.reasoning.append(reasoning)
        if text:
            self.parts.append(text)

    def opening(self) -> str:
        return "Investigating with read-only tools …\n\n"

    def reasoning_text(self) -> str:
        return self.opening() + "".join(self.reasoning)

    def on_event(self, kind: str, data: dict[str, Any]) -> tuple[str, str]:
        if kind == "step_start":
            self.steps += 1
            self.started.add(str(data.get("call_id")))
            return (
                f"- `{_esc(data.get('call_id'))}` **{_esc(data.get('tool'))}**"
                f"({_esc(_args(data.get('arguments')), ARGS_CHARS)}) "
            ), ""
        if kind == "step_result":
            head = ""
            if str(data.get("call_id")) not in self.started:
                self.steps += 1
                head = f"- `{_esc(data.get('call_id'))}` **{_esc(data.get('tool'))}** "
            state = "ok" if data.get("ok") else "failed"
            return f"{head}→ {state}: {_esc(data.get('summary'), SUMMARY_CHARS)}\n", ""
        if kind == "turn_delta":
            # Written during a tool turn: thinking aloud before a call (weak models write a lot
            # of it), or the answer, which then follows whole as answer_delta.  Live either way.
            return str(data.get("text") or ""), ""
        if kind == "answer_delta":
            if self.failed is not None:
                return "", ""  # a fallback diagnosis written without the model: not an answer
            return "", str(data.get("text") or "")
        if kind == "error":
            message = _esc(data.get("message"), 300)
            if data.get("outcome") == "failed":
                self.failed = f"the investigation failed: {message}"
            return f"\n**Investigation {_esc(data.get('outcome'))}:** {message}\n", ""
        return "", ""  # proposal, diagnosis: listed at the end and carried as data

    def failure(self, inv: Any) -> str | None:
        """Why this investigation is an error for the client, or None when it has an answer to show."""
        if self.failed is not None:
            return self.failed
        if getattr(inv, "outcome", "ok") == "failed":
            return f"the investigation failed: {_esc(inv.error or 'the meta model failed', 300)}"
        return None

    def finish(self, inv: Any, streamed: bool = False) -> str:
        """The closing text (the whole content when not streamed)."""
        tail = []
        if inv.proposals:
            tail.append(proposals_text(inv.proposals))
        if getattr(inv, "finding_id", None):
            tail.append(f"\n\n_Recorded as finding {inv.finding_id} (outcome {inv.outcome})._")
        text = "".join(tail)
        return text if streamed else "".join(self.parts) + text


def proposals_text(proposals: list[ProposalOutcome]) -> str:
    lines = [
        "\n\n**Proposed actions** (approve with `ai-sysadmin actions approve ID --reason ...` or "
        "`POST /api/v1/actions/ID/approve`; chat cannot approve)"
    ]
    for p in proposals:
        j = p.to_json()
        ident = f"#{j['action_id']}" if j.get("action_id") is not None else "(not recorded)"
        params = json.dumps(j.get("params") or {}, sort_keys=True)
        lines.append(
            f"- action **{ident}** `{_esc(j.get('action'))}` `{_esc(params, ARGS_CHARS)}`: "
            f"risk **{_esc(j.get('risk') or 'unknown')}**, policy decision **{_esc(j.get('decision'))}**"
            f" — {_esc(j.get('reason'), 200)}"
        )
    return "\n".join(lines) + "\n"


def _summary(inv: Any) -> dict[str, Any]:
    return {
        "steps": [s.to_json() for s in inv.steps],
        "proposals": [p.to_json() for p in inv.proposals],
        "diagnosis": inv.diagnosis,
        "finding_id": inv.finding_id,
        "outcome": inv.outcome,
        "error": inv.error,
    }


def _completion(cid: str, text: str, reasoning: str, inv: Any, tally: list[int]) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "reasoning_content": reasoning}
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": AGENT_MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": _usage_json(tally),
        "ai_sysadmin": _summary(inv),
    }


def _usage_json(tally: list[int]) -> dict[str, int]:
    return {"prompt_tokens": tally[0], "completion_tokens": tally[1], "total_tokens": tally[0] + tally[1]}


def _chunk(
    cid: str, delta: dict[str, Any], *, finish: str | None = None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": AGENT_MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra is not None:
        chunk["ai_sysadmin"] = extra
    return chunk


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, default=str).encode() + b"\n\n"


def _args(arguments: Any) -> str:
    if isinstance(arguments, dict):
        return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in arguments.items())
    return "" if arguments is None else json.dumps(arguments, default=str)


def _esc(value: Any, limit: int = 80) -> str:
    """Tool output and model arguments are untrusted: no HTML, no markdown code breakouts, bounded."""
    text = " ".join(str(value if value is not None else "").split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False).replace("`", "'")
