"""One tool turn, read leniently: each call of the turn stands or falls on its own.

A strict tool turn fails whole when one call is malformed (name unknown, arguments not
JSON), so a model that writes three good calls and a fourth cut off at the token limit
would lose all four.  The loop needs the good ones executed and the bad one answered
with an error the model can act on: it asks the client for a lenient turn
(`LLMClient.tool_turn(lenient=True)`) and keeps the reason with each call.

With `on_text`, the turn is streamed (`LLMClient.tool_turn_stream`): what the model writes
in it is seen as it is written, not in one piece after the whole turn was generated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ai_sysadmin.llm import LLMClient


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


async def tool_turn(
    client: LLMClient,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    *,
    tool_choice: str,
    max_tokens: int | None,
    on_text: Callable[[str], Awaitable[None]] | None = None,
) -> Turn:
    # Lenient: unknown names come back for the toolset to answer; undecodable arguments
    # come back with the reason, instead of failing the whole turn.
    if on_text is not None:
        turn = await client.tool_turn_stream(
            messages, tools, on_content=on_text, tool_choice=tool_choice, max_tokens=max_tokens, lenient=True
        )
    else:
        turn = await client.tool_turn(messages, tools, tool_choice=tool_choice, max_tokens=max_tokens, lenient=True)
    calls = []
    for c in turn.tool_calls:
        error = c.error
        if error is not None and "not JSON" in error:
            error += " (cut off at the token limit?)"
        calls.append(TurnCall(c.name, c.arguments if error is None else None, c.raw, error))
    return Turn(turn.content, calls, turn.finish_reason)
