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
    return body[: start + 1] + b'"return_progress":true,' + body[start + 1 :]


class Gate:
    """Feeds a stream's first bytes until the answer begins.

    `feed` returns what may go to the client and whether the answer began: progress events
    are dropped; SSE comments (llama-server's `:` pings, sent from its HTTP thread while the
    prompt is processed) pass, since clients use them as keep-alives, but begin nothing."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> tuple[bytes, bool]:
        self._held += chunk
        out = b""
        while True:
            end = self._held.find(b"\n\n")
            if end < 0:
                return out, False  # an event not complete yet
            event, rest = self._held[: end + 2], self._held[end + 2 :]
            if FIELD not in event and not event.startswith(b":"):
                self._held = b""
                return out + event + rest, True  # the answer began: everything from here on goes out
            if event.startswith(b":"):
                out += event
            self._held = rest

    def leftover(self) -> bytes:
        """What is held when the stream ends before an answer event (an error without the blank line)."""
        held, self._held = self._held, b""
        return held
