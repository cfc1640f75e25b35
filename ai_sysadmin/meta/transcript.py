"""A bounded copy of an investigation's conversation, stored with its finding."""

from __future__ import annotations

import json
from typing import Any

PER_MESSAGE_SHARE = 0.2  # one message may take at most this share of the transcript budget


def bound_transcript(messages: list[dict[str, Any]], max_chars: int) -> list[dict[str, Any]]:
    """Messages with long contents cut and, if still too long, the middle dropped (marked)."""
    per = max(200, int(max_chars * PER_MESSAGE_SHARE))
    out: list[dict[str, Any]] = []
    for m in messages:
        m = dict(m)
        content = m.get("content")
        if isinstance(content, str) and len(content) > per:
            m["content"] = content[:per] + f"…[cut {len(content) - per} characters]"
        out.append(m)
    sizes = [len(json.dumps(m, default=str)) for m in out]
    if sum(sizes) <= max_chars:
        return out
    # Keep the start (system prompt, question) and as much of the end as fits.
    head = out[:2]
    room = max_chars - sum(sizes[:2])
    tail: list[dict[str, Any]] = []
    for m, size in zip(reversed(out[2:]), reversed(sizes[2:]), strict=True):
        if size > room:
            break
        tail.append(m)
        room -= size
    tail.reverse()
    dropped = len(out) - len(head) - len(tail)
    return [*head, {"role": "note", "content": f"[{dropped} message(s) dropped to bound the transcript]"}, *tail]
