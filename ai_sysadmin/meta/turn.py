"""One tool turn, read leniently: each call of the turn stands or falls on its own.

`LLMClient.tool_turn` rejects the whole turn when one call is malformed (name unknown,
arguments not JSON), so a model that writes three good calls and a fourth cut off at
the token limit would lose all four.  The loop needs the good ones executed and the bad
one answered with an error the model can act on.  Until the client offers a lenient
mode, this reuses the client's own request path (`_call`, which does the retries,
error mapping and per-layer accounting, and `_sdk`) and only parses differently; a
client without them falls back to the strict `tool_turn`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TurnCall:
    name: str
    arguments: Any  # the decoded object, or None when `error` says why not
    raw: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Turn:
    content: str | None
    calls: list[TurnCall] = field(default_factory=list)
    finish_reason: str | None = None


async def tool_turn(client: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                    tool_choice: str, max_tokens: int | None) -> Turn:
    sdk, call = getattr(client, "_sdk", None), getattr(client, "_call", None)
    if sdk is None or call is None:
        strict = await client.tool_turn(messages, tools, tool_choice=tool_choice, max_tokens=max_tokens)
        return Turn(strict.content, [TurnCall(c.name, c.arguments) for c in strict.tool_calls], strict.finish_reason)
    limit = max_tokens if max_tokens is not None else (client.role.max_tokens or None)
    resp = await call("tools", lambda: sdk.chat.completions.create(
        model=client.role.model, messages=messages, tools=tools, tool_choice=tool_choice, max_tokens=limit,
        temperature=0.0))
    choice = resp.choices[0]
    calls = []
    for tc in choice.message.tool_calls or []:
        fn = tc.function
        raw = fn.arguments or "{}"
        try:
            args = json.loads(raw)
            error = None if isinstance(args, dict) else "arguments are not a JSON object"
        except json.JSONDecodeError as exc:
            args, error = None, f"arguments are not JSON ({exc.msg}; cut off at the token limit?)"
        calls.append(TurnCall(str(fn.name or ""), args if error is None else None, raw[:300], error))
    return Turn(choice.message.content, calls, choice.finish_reason)
