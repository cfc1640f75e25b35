"""llama-server's prompt-progress chunks: asked for on relayed streams, never passed on.

With `"return_progress": true` llama-server sends, while it processes a prompt, an
event after each batch of prompt tokens (`prompt_progress`: total, cache, processed,
time_ms) -- a sign of life long before the first token (llm/liveness.py).  Clients did
not ask for them and Open WebUI would see extra empty assistant deltas, so the relay
holds back the events of a stream until the first one that is not progress, drops the
progress events, and from there on copies bytes untouched again.
"""

from __future__ import annotations

from typing import Any

FIELD = b'"prompt_progress"'


def ask(data: dict[str, Any], body: bytes) -> bytes | None:
    """`body` with `return_progress` added, or None when the client set it itself (its choice stands).

    Spliced after the opening brace, so the body is not re-encoded."""
    if "return_progress" in data or not data:
        return None
    start = body.index(b"{")
    return body[:start + 1] + b'"return_progress":true,' + body[start + 1:]


class Gate:
    """Feeds a stream's first bytes; returns what may go to the client (b"" while only progress came)."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        self._held += chunk
        while True:
            end = self._held.find(b"\n\n")
            if end < 0:
                return b""  # an event not complete yet
            event, rest = self._held[:end + 2], self._held[end + 2:]
            if FIELD not in event:
                self._held = b""
                return event + rest  # the answer began: everything from here on goes out
            self._held = rest

    def leftover(self) -> bytes:
        """What is held when the stream ends before an answer event (an error without the blank line)."""
        held, self._held = self._held, b""
        return held
