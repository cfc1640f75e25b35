"""One async client per model role, on the `openai` SDK.

llama-server (and Ollama, vLLM, LocalAI ...) speak the OpenAI API under `/v1`; the
client talks to whatever `roles.<name>.url` names.  A legacy Ollama endpoint is just
another base URL (`http://127.0.0.1:11434`); llama-server-only extras (`/health`,
`/tokenize`) degrade to `Unsupported` there.

Failure policy:
* connection refused -> `ModelUnavailable` at once (the SDK's own retries are off:
  with them a stopped server took minutes to surface);
* 503 (model loading) and other 5xx -> bounded retries with exponential backoff,
  because the server will be back shortly;
* timeouts and 4xx are not retried: the same request would fail the same way;
* structured output is validated against the requested schema -> `BadModelOutput`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import jsonschema
import openai

from ai_sysadmin.config import RoleConfig
from ai_sysadmin.llm import accounting, liveness
from ai_sysadmin.llm.errors import (
    BadModelOutput,
    LLMError,
    ModelRequestError,
    ModelTimeout,
    ModelUnavailable,
    Unsupported,
)
from ai_sysadmin.llm.textcalls import content_tool_call

log = logging.getLogger(__name__)
T = TypeVar("T")
Message = dict[str, Any]


@dataclass(frozen=True)
class CallRecord:
    """What one model call cost; the store persists these for per-layer accounting."""

    role: str
    model: str
    kind: str  # chat | stream | structured | tools | embed
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    outcome: str  # ok | unavailable | timeout | bad_output | rejected | error
    layer: str | None = None  # from llm.accounting.call_context
    incident_id: int | None = None


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # usage.prompt_tokens_details.cached_tokens: prompt served from the server's cache


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    # Lenient turns only: why this call cannot be run (arguments are then {}), and the
    # start of what the model wrote, for the error the loop sends back.
    error: str | None = None
    raw: str = ""


@dataclass(frozen=True)
class ToolTurn:
    """One assistant turn that may request tools."""

    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None

    def as_message(self) -> Message:
        """The assistant message to append to the conversation before tool results."""
        msg: Message = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in self.tool_calls
            ]
        return msg


@dataclass(frozen=True)
class Health:
    ok: bool
    status: str  # ok | loading | unavailable | error | unsupported
    detail: str = ""


CallHook = Callable[[CallRecord], None]


class LLMClient:
    """Client for one role; construct from `RoleConfig`, close with `aclose()`."""

    def __init__(
        self,
        role: RoleConfig,
        *,
        on_call: CallHook | None = None,
        backoff_base: float = 0.5,
        idle_timeout: float | None = None,
        idle_setting: str | None = None,
    ):
        self.role = role
        self._on_call = on_call
        self._backoff_base = backoff_base
        # Silence after which /health is asked whether the server still works (llm/liveness.py).
        # None: the role's own (roles.<name>.idle_timeout); the API's agent passes
        # api.upstream_idle_timeout.  `idle_setting` names the key in error messages.
        self.idle_timeout = idle_timeout if idle_timeout is not None else role.idle_timeout
        self.idle_setting = idle_setting or f"roles.{role.name}.idle_timeout"
        self._progress: bool | None = None  # does the server stream prompt progress (llama-server)?
        timeout = httpx.Timeout(role.timeout, connect=role.connect_timeout)
        self._http = httpx.AsyncClient(timeout=timeout)
        api_key = role.api_key.reveal() if role.api_key else "no-key"
        # The SDK's types are narrower than what this client sends: messages and tools are plain
        # dicts (the server validates them), and llama-server's extra body fields (grammar,
        # cache_prompt, json_schema) are not in its overloads; the ignores below mark those calls.
        self._sdk = openai.AsyncOpenAI(
            base_url=f"{role.url}/v1",
            api_key=api_key,
            # openai >= 3 types these against httpx2; httpx objects work
            timeout=timeout,  # type: ignore[arg-type]
            max_retries=0,
            http_client=self._http,  # type: ignore[arg-type]
        )
        self._headers = {"Authorization": f"Bearer {api_key}"} if role.api_key else {}

    @property
    def name(self) -> str:
        return self.role.name

    async def aclose(self) -> None:
        await self._sdk.close()
        await self._http.aclose()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ chat

    async def chat(
        self, messages: list[Message], *, max_tokens: int | None = None, temperature: float = 0.2, **extra: Any
    ) -> ChatResult:
        resp = await self._call(
            "chat",
            lambda: self._sdk.chat.completions.create(
                model=self.role.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self._max_tokens(max_tokens),
                temperature=temperature,
                **extra,
            ),
        )
        choice = resp.choices[0]
        return ChatResult(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=_usage(resp, "prompt_tokens"),
            completion_tokens=_usage(resp, "completion_tokens"),
            cached_tokens=_cached_tokens(resp),
        )

    async def stream(
        self, messages: list[Message], *, max_tokens: int | None = None, temperature: float = 0.2, **extra: Any
    ) -> AsyncIterator[str]:
        """Yield content deltas as they arrive. Errors map to the typed failures.

        Usage is asked for (`stream_options.include_usage`): llama-server (and OpenAI)
        send real token counts in the last chunk, which is what gets recorded.  A server
        that sends none is recorded with the number of content chunks as completion tokens.
        """
        started = time.monotonic()
        chunks = 0
        prompt = completion = None
        outcome = "error"
        options = {"include_usage": True, **(extra.pop("stream_options", None) or {})}
        extra = await self._with_progress(extra)
        try:
            stream = await self._with_retries(
                lambda: self._sdk.chat.completions.create(  # type: ignore[call-overload]
                    model=self.role.model,
                    messages=messages,
                    max_tokens=self._max_tokens(max_tokens),
                    temperature=temperature,
                    stream=True,
                    stream_options=options,
                    **extra,
                )
            )
            try:
                async for chunk in self._idle_limited(stream):
                    counted = _stream_usage(chunk)
                    if counted is not None:
                        prompt, completion = counted
                    if chunk.choices and chunk.choices[0].delta.content:
                        chunks += 1
                        yield chunk.choices[0].delta.content
            except Exception as exc:  # mid-stream failure
                raise self._map(exc) from exc
            finally:
                await stream.close()
            outcome = "ok"
        except LLMError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            self._record("stream", prompt or 0, completion if completion is not None else chunks, started, outcome)

    async def structured(
        self,
        messages: list[Message],
        schema: dict[str, Any],
        *,
        name: str = "answer",
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> dict[str, Any]:
        """Ask for a JSON object that llama-server constrains to `schema`, and validate it.

        Recorded as kind `structured`, with outcome `bad_output` when the answer is not
        valid JSON or violates the schema (its tokens were still spent and are counted).
        """
        response_format = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}

        def check(resp: Any) -> dict[str, Any]:
            choice = resp.choices[0]
            text = choice.message.content or ""
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                why = "truncated at max_tokens" if choice.finish_reason == "length" else f"not JSON ({exc.msg})"
                raise BadModelOutput(self.name, f"structured answer {why}", raw=text) from None
            try:
                jsonschema.validate(obj, schema)
            except jsonschema.ValidationError as exc:
                where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
                raise BadModelOutput(self.name, f"answer violates schema at {where}: {exc.message}", raw=text) from None
            return obj

        return await self._call(
            "structured",
            lambda: self._sdk.chat.completions.create(  # type: ignore[call-overload]
                model=self.role.model,
                messages=messages,
                max_tokens=self._max_tokens(max_tokens),
                temperature=temperature,
                response_format=response_format,
            ),
            check,
        )

    async def tool_turn(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        tool_choice: str | dict[str, Any] = "auto",
        max_tokens: int | None = None,
        temperature: float = 0.0,
        lenient: bool = False,
    ) -> ToolTurn:
        """One assistant turn with tools offered; arguments are decoded and checked to be objects.

        Strict (default): a malformed call (unknown tool, arguments not a JSON object)
        fails the whole turn with BadModelOutput.  `lenient=True`: each call stands on its
        own -- one whose arguments are not a JSON object comes back with `error` set, and
        an unknown tool name comes back as it is, for the caller's dispatcher to answer.
        An agent loop can so run the good calls of a turn and answer the bad ones (weak
        models often cut the last call off at the token limit).
        """
        resp = await self._call(
            "tools",
            lambda: self._sdk.chat.completions.create(  # type: ignore[call-overload]
                model=self.role.model,
                messages=messages,
                tools=tools,
                tool_choice=tool_choice,
                max_tokens=self._max_tokens(max_tokens),
                temperature=temperature,
            ),
        )
        choice = resp.choices[0]
        raw = [
            (tc.id or "", str(tc.function.name or ""), tc.function.arguments or "{}")
            for tc in choice.message.tool_calls or []
        ]
        raw, content = _text_call(raw, choice.message.content, tools)
        calls = _decode_calls(self.name, raw, tools, lenient)
        return ToolTurn(content=content, tool_calls=calls, finish_reason=choice.finish_reason)

    async def tool_turn_stream(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        on_content: Callable[[str], Awaitable[None]],
        tool_choice: str | dict[str, Any] = "auto",
        max_tokens: int | None = None,
        temperature: float = 0.0,
        lenient: bool = False,
    ) -> ToolTurn:
        """`tool_turn`, streamed: content deltas go to `on_content` as they arrive.

        A turn that ends up answering (no tool calls) has so been shown token by token;
        tool-call deltas are joined per index (the name comes once, the arguments in pieces).
        """
        started = time.monotonic()
        prompt = completion = 0
        outcome = "error"
        parts: list[str] = []
        pieces: dict[int, dict[str, str]] = {}
        finish: str | None = None
        extra = await self._with_progress({})
        try:
            stream = await self._with_retries(
                lambda: self._sdk.chat.completions.create(  # type: ignore[call-overload]
                    model=self.role.model,
                    messages=messages,
                    tools=tools,
                    tool_choice=tool_choice,
                    max_tokens=self._max_tokens(max_tokens),
                    temperature=temperature,
                    stream=True,
                    stream_options={"include_usage": True},
                    **extra,
                )
            )
            try:
                async for chunk in self._idle_limited(stream):
                    counted = _stream_usage(chunk)
                    if counted is not None:
                        prompt, completion = counted
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    finish = choice.finish_reason or finish
                    delta = choice.delta
                    if delta.content:
                        parts.append(delta.content)
                        await on_content(delta.content)
                    for tc in delta.tool_calls or []:
                        piece = pieces.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                        piece["id"] = piece["id"] or (tc.id or "")
                        if tc.function is not None:
                            piece["name"] = piece["name"] or (tc.function.name or "")
                            piece["arguments"] += tc.function.arguments or ""
            except LLMError:
                raise
            except Exception as exc:  # mid-stream failure
                raise self._map(exc) from exc
            finally:
                await stream.close()
            raw = [(p["id"], p["name"], p["arguments"]) for _, p in sorted(pieces.items())]
            raw, content = _text_call(raw, "".join(parts) or None, tools)
            calls = _decode_calls(self.name, raw, tools, lenient)
            outcome = "ok"
        except LLMError as exc:
            outcome = _outcome(exc)
            raise
        finally:
            self._record("tools", prompt, completion, started, outcome)
        return ToolTurn(content=content, tool_calls=calls, finish_reason=finish)

    async def _idle_limited(self, stream: Any) -> AsyncIterator[Any]:
        """The stream's answer chunks; prompt-progress chunks before the first are signs of life, not yielded.

        Silence of idle_timeout makes the server's /health be asked (llm/liveness.py): a long
        prompt, or another slot's prompt batch, pauses a working server; a stopped one is gone."""
        chunks = stream.__aiter__()
        answering = False
        while True:
            try:
                chunk = await self._watched(chunks.__anext__(), answering)
            except StopAsyncIteration:
                return
            if not answering and _is_progress(chunk):
                continue
            answering = True
            yield chunk

    async def _watched(self, aw: Awaitable[T], answering: bool = False) -> T:
        """`aw`, failing with ModelTimeout as soon as silence plus a failed /health show the server gone."""
        try:
            return await liveness.watched(aw, self.idle_timeout, self._alive)
        except liveness.Silent as exc:
            what = "went silent mid-answer" if answering else "stopped answering"
            raise ModelTimeout(
                self.name, f"{what}: {exc} ({self.idle_setting}); stopped or crashed? see its log"
            ) from None

    async def _alive(self) -> str | None:
        timeout = liveness.probe_timeout(self.idle_timeout)
        try:
            r = await self._http.get(f"{self.role.url}/health", headers=self._headers, timeout=timeout)
        except httpx.HTTPError as exc:
            return liveness.health_verdict(
                None, _short(exc) if not isinstance(exc, httpx.TimeoutException) else None, timeout
            )
        return liveness.health_verdict(r.status_code, None, timeout)

    async def _with_progress(self, extra: dict[str, Any]) -> dict[str, Any]:
        """`extra` asking llama-server for prompt-progress chunks; other servers get it unchanged
        (the real OpenAI API rejects unknown fields).  Whether it is llama-server is asked once."""
        if self._progress is None:
            try:
                r = await self._http.get(
                    f"{self.role.url}/props", headers=self._headers, timeout=liveness.probe_timeout(self.idle_timeout)
                )
                if r.status_code not in (200, 404):
                    return extra  # loading, or failing: unknown for now, asked again next time
                body = r.json() if r.status_code == 200 else None
                self._progress = isinstance(body, dict) and "default_generation_settings" in body
            except (httpx.HTTPError, ValueError):
                return extra  # unknown for now: asked again next time
        if not self._progress:
            return extra
        body = dict(extra.get("extra_body") or {})
        body.setdefault("return_progress", True)
        return {**extra, "extra_body": body}

    async def embed(self, texts: list[str]) -> list[list[float]]:
        resp = await self._call("embed", lambda: self._sdk.embeddings.create(model=self.role.model, input=texts))
        return [d.embedding for d in sorted(resp.data, key=lambda d: d.index)]

    # ------------------------------------------------------------------ llama-server extras

    async def health(self) -> Health:
        """llama-server's /health: 200 when ready, 503 while loading the model."""
        try:
            r = await self._http.get(f"{self.role.url}/health", headers=self._headers)
        except httpx.TimeoutException:
            return Health(False, "unavailable", "timed out")
        except httpx.HTTPError as exc:
            return Health(False, "unavailable", _short(exc))
        if r.status_code == 200:
            return Health(True, "ok")
        if r.status_code == 503:
            return Health(False, "loading", _error_message(r))
        if r.status_code == 404:
            return Health(False, "unsupported", "no /health endpoint (not llama-server?)")
        return Health(False, "error", f"HTTP {r.status_code}: {_error_message(r)}")

    async def served_models(self) -> list[str]:
        resp = await self._with_retries(lambda: self._sdk.models.list())
        return [m.id for m in resp.data]

    async def tokenize(self, text: str) -> list[int]:
        """Token ids from the serving model's own tokenizer (llama-server /tokenize)."""
        try:
            r = await self._http.post(f"{self.role.url}/tokenize", json={"content": text}, headers=self._headers)
        except Exception as exc:
            raise self._map(exc) from exc
        if r.status_code == 404:
            raise Unsupported(self.name, "endpoint has no /tokenize")
        if r.status_code == 503:
            raise ModelUnavailable(self.name, "model loading")
        if r.status_code != 200:
            raise ModelRequestError(self.name, f"/tokenize HTTP {r.status_code}", r.status_code)
        return list(r.json()["tokens"])

    async def count_tokens(self, text: str) -> int:
        return len(await self.tokenize(text))

    # ------------------------------------------------------------------ plumbing

    def _max_tokens(self, override: int | None) -> int | None:
        value = override if override is not None else self.role.max_tokens
        return value or None

    async def _call(
        self, kind: str, make: Callable[[], Awaitable[Any]], check: Callable[[Any], T] | None = None
    ) -> Any:
        """One recorded request; `check` turns the response into the result and may raise BadModelOutput."""
        started = time.monotonic()
        try:
            resp = await self._with_retries(make)
        except LLMError as exc:
            self._record(kind, 0, 0, started, _outcome(exc))
            raise
        prompt, completion = _usage(resp, "prompt_tokens"), _usage(resp, "completion_tokens")
        if check is None:
            self._record(kind, prompt, completion, started, "ok")
            return resp
        try:
            result = check(resp)
        except LLMError as exc:
            self._record(kind, prompt, completion, started, _outcome(exc))
            raise
        self._record(kind, prompt, completion, started, "ok")
        return result

    async def _with_retries(self, make: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                return await self._watched(make())
            except Exception as exc:
                mapped = self._map(exc)
                if attempt >= self.role.max_retries or not _retryable(exc):
                    raise mapped from exc
                delay = self._backoff_base * (2**attempt) * (0.75 + random.random() / 2)
                log.info("%s: %s; retry %d/%d in %.1fs", self.name, mapped, attempt + 1, self.role.max_retries, delay)
                attempt += 1
                await asyncio.sleep(delay)

    def _map(self, exc: BaseException) -> LLMError:
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return ModelTimeout(self.name, f"no answer within {self.role.timeout:g}s")
        if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            return ModelUnavailable(self.name, f"cannot reach {self.role.url} ({_short(exc.__cause__ or exc)})")
        if isinstance(exc, openai.APIStatusError):
            msg = _status_message(exc)
            if exc.status_code == 503:
                return ModelUnavailable(self.name, f"server not ready: {msg}")
            if 400 <= exc.status_code < 500:
                return ModelRequestError(
                    self.name, f"request rejected (HTTP {exc.status_code}): {msg}", exc.status_code
                )
            return LLMError(self.name, f"server error (HTTP {exc.status_code}): {msg}")
        return LLMError(self.name, f"unexpected failure: {_short(exc)}")

    def _record(self, kind: str, prompt: int, completion: int, started: float, outcome: str) -> None:
        if self._on_call is None:
            return
        try:
            ctx = accounting.current()
            self._on_call(
                CallRecord(
                    self.name,
                    self.role.model,
                    kind,
                    prompt,
                    completion,
                    time.monotonic() - started,
                    outcome,
                    ctx.layer,
                    ctx.incident_id,
                )
            )
        except Exception:  # accounting must never break a call
            log.exception("LLM call hook failed")


def _text_call(
    raw: list[tuple[str, str, str]], content: str | None, tools: list[dict[str, Any]]
) -> tuple[list[tuple[str, str, str]], str | None]:
    """Small models write a call as a (fenced) JSON object in the text: exactly that shape, naming
    an offered tool, becomes a call (checked by _decode_calls like a native one); else nothing changes."""
    if raw:
        return raw, content
    known = {t["function"]["name"] for t in tools if t.get("type") == "function"}
    found = content_tool_call(content, known)
    if found is None:
        return raw, content
    return [("", found.name, found.raw_arguments)], None


def _decode_calls(
    role: str, raw: list[tuple[str, str, str]], tools: list[dict[str, Any]], lenient: bool
) -> list[ToolCall]:
    """(id, name, arguments text) per call -> ToolCalls; strict: the first bad call fails the turn."""
    calls: list[ToolCall] = []
    known = {t["function"]["name"] for t in tools if t.get("type") == "function"}
    for i, (call_id, name, text) in enumerate(raw):
        text = text or "{}"
        error = None
        args: Any = {}
        if name not in known and not lenient:
            raise BadModelOutput(role, f"tool call {i} names unknown tool {name!r}", raw=text)
        try:
            args = json.loads(text)
            if not isinstance(args, dict):
                error = f"tool call {i} ({name}) arguments are not an object"
        except json.JSONDecodeError as exc:
            error = f"tool call {i} ({name}) arguments are not JSON: {exc.msg}"
        if error is not None and not lenient:
            raise BadModelOutput(role, error, raw=text)
        calls.append(
            ToolCall(
                id=call_id or f"call_{i}",
                name=name,
                arguments=args if error is None else {},
                error=error,
                raw=text[:300],
            )
        )
    return calls


def _is_progress(chunk: Any) -> bool:
    """llama-server's prompt-progress chunk (`return_progress`): no answer in it."""
    return bool((getattr(chunk, "model_extra", None) or {}).get("prompt_progress"))


def _retryable(exc: BaseException) -> bool:
    # Only a server that is up but busy/loading recovers by itself within seconds.
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _outcome(exc: LLMError) -> str:
    return {
        ModelUnavailable: "unavailable",
        ModelTimeout: "timeout",
        BadModelOutput: "bad_output",
        ModelRequestError: "rejected",
    }.get(type(exc), "error")


def _usage(resp: Any, name: str) -> int:
    usage = getattr(resp, "usage", None)
    return int(getattr(usage, name, 0) or 0) if usage else 0


def _cached_tokens(resp: Any) -> int:
    details = getattr(getattr(resp, "usage", None), "prompt_tokens_details", None)
    return int(getattr(details, "cached_tokens", 0) or 0) if details else 0


def _short(exc: BaseException) -> str:
    text = str(exc) or exc.__class__.__name__
    return text if len(text) < 160 else text[:157] + "..."


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:200]
    return _short(exc)


def _error_message(r: httpx.Response) -> str:
    try:
        body = r.json()
        err = body.get("error", body)
        return str(err.get("message", err))[:200] if isinstance(err, dict) else str(err)[:200]
    except Exception:
        return r.text[:200]


def build_clients(roles: Iterable[RoleConfig], on_call: CallHook | None = None) -> dict[str, LLMClient]:
    """One client per enabled role, keyed by role name."""
    return {r.name: LLMClient(r, on_call=on_call) for r in roles if r.enable}


def _stream_usage(chunk: Any) -> tuple[int, int] | None:
    """(prompt, completion) tokens when a streamed chunk carries the usage (the last one does)."""
    if getattr(chunk, "usage", None) is None:
        return None
    return _usage(chunk, "prompt_tokens"), _usage(chunk, "completion_tokens")
