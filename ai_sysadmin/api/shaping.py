"""What a chat request looks like when it reaches a role's llama-server.

Open WebUI (0.12) attaches its own built-in tools -- memory, notes, web search, chats,
about 29 of them and over 20 KB -- to every chat request.  On a small host that turned
a one-line question to the meta role into a 7,000-token prompt, and the model may call
Open WebUI's tools instead of answering.  So, before relaying:

* `api.client_tools` = "drop" (default) removes `tools` / `tool_choice` /
  `parallel_tool_calls`; "pass" relays them for clients that bring tools on purpose;
* a background task (title, tags, follow-ups; see background.py) gets at most
  `api.background_max_tokens` to write -- Open WebUI sends none, and a small model
  then rambles until the read timeout;
* a streamed request to llama-server asks for prompt-progress events (`return_progress`),
  the signs of life while a long prompt is processed (api/progress.py, llm/liveness.py);
* a prompt that cannot fit the server's slot (`/props` n_ctx per slot) is refused with
  400 `context_length_exceeded` naming both sizes, instead of being cut by the server
  (`max_tokens` is not counted: an answer that reaches the slot's end stops there with
  finish_reason "length", which clients show).
  Counting costs two requests (`/apply-template`, `/tokenize`), so it is done only
  when a cheap bound cannot prove the fit: a token covers at least one byte of the
  rendered prompt, and the template adds a bounded number of tokens per message.

The body is re-encoded only when something changed (the relay stays bytes in, bytes out).
"""

from __future__ import annotations

import json
from typing import Any

from ai_sysadmin.api import progress
from ai_sysadmin.api.background import background_task
from ai_sysadmin.api.errors import ApiError
from ai_sysadmin.api.upstream import Upstream
from ai_sysadmin.config import ApiConfig

TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls")
# Tokens a chat template may add: per message (role markers) and once (system preamble,
# the tool-calling instructions that wrap the tools' JSON).
TEMPLATE_TOKENS_PER_MESSAGE = 16
TEMPLATE_TOKENS = 512
COUNT_TIMEOUT = 10.0


def reshape(api: ApiConfig, upstream: Upstream, data: dict[str, Any]) -> dict[str, Any] | None:
    """The request as the role's server should get it, or None when it goes as it came."""
    changes: dict[str, Any] = {}
    drop: list[str] = []
    if data.get("model") != upstream.role.model:
        changes["model"] = upstream.role.model  # the server's own id
    if api.client_tools == "drop":
        drop += [f for f in TOOL_FIELDS if f in data]
    if background_task(data) is not None:
        cap = api.background_max_tokens
        asked = [data.get(f) for f in ("max_tokens", "max_completion_tokens")]
        if not any(isinstance(v, int) and 0 < v <= cap for v in asked):
            changes["max_tokens"] = cap
            drop.append("max_completion_tokens")
    if not changes and not drop:
        return None
    return {**{k: v for k, v in data.items() if k not in drop}, **changes}


async def prepare(
    api: ApiConfig, upstream: Upstream, data: dict[str, Any], body: bytes, stream: bool
) -> tuple[bytes, bool]:
    """The body to relay: reshaped when needed, and known to fit the server's slot; and
    whether it asks llama-server for prompt-progress events the relay must hold back."""
    shaped = reshape(api, upstream, data)
    if shaped is not None:
        data, body = shaped, json.dumps(shaped).encode()
    await check_fits(upstream, data, body)
    if stream and upstream.streams_progress:
        asked = progress.ask(data, body)
        if asked is not None:
            return asked, True
    return body, False


async def check_fits(upstream: Upstream, data: dict[str, Any], body: bytes) -> None:
    slot = await upstream.slot_size()
    if slot is None:
        return  # not llama-server, or not up: the server itself answers
    # Only the prompt must fit: llama-server stops an answer at the slot's end and says so
    # (finish_reason "length"); clients send generous max_tokens and must not be refused for it.
    reserved = 1
    given = data.get("messages")
    messages = given if isinstance(given, list) else []
    bound = len(body) + TEMPLATE_TOKENS + TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    if bound + reserved <= slot:
        return  # certain to fit, without asking
    tokens = await count_prompt(upstream, data)
    if tokens is None or tokens + reserved <= slot:
        return
    tools = len(data.get("tools") or []) if isinstance(data.get("tools"), list) else 0
    hint = f"; it carries {tools} client tools (api.client_tools)" if tools else ""
    raise ApiError(
        400,
        f"the request is {tokens} prompt tokens, but model "
        f"{upstream.name!r} serves {slot} tokens per request{hint}; shorten the conversation "
        f"or raise roles.{upstream.name}.context_size",
        param="messages",
        code="context_length_exceeded",
    )


async def count_prompt(upstream: Upstream, data: dict[str, Any]) -> int | None:
    """The prompt's tokens as the server renders it (its chat template, its tokenizer); None if unknown."""
    template_req = {k: data[k] for k in ("messages", "tools", "tool_choice") if k in data}
    status, rendered = await upstream.post_json("/apply-template", template_req, COUNT_TIMEOUT)
    prompt = rendered.get("prompt") if status == 200 and isinstance(rendered, dict) else None
    if not isinstance(prompt, str):
        return None
    status, tokens = await upstream.post_json("/tokenize", {"content": prompt, "parse_special": True}, COUNT_TIMEOUT)
    ids = tokens.get("tokens") if status == 200 and isinstance(tokens, dict) else None
    return len(ids) if isinstance(ids, list) else None
