"""The per-result output budget: about 15 % of the meta role's context, with an absolute cap.

A result over budget keeps its head and its tail (journal queries put the newest lines
last) and says in the middle what was cut and how to narrow the query, so the model
can ask again for less instead of reasoning over a silently clipped text.
"""

from __future__ import annotations

CHARS_PER_TOKEN = 3.5  # a conservative average for log-like English text
MIN_CHARS = 600


def budget_chars(context_tokens: int, share: float, cap_chars: int) -> int:
    """Characters one tool result may take."""
    return max(MIN_CHARS, min(cap_chars, int(context_tokens * share * CHARS_PER_TOKEN)))


def fit(text: str, max_chars: int, hint: str) -> tuple[str, bool]:
    """(text within max_chars, whether anything was cut)."""
    if len(text) <= max_chars:
        return text, False
    lines = text.splitlines()
    note_room = 200
    room = max(100, max_chars - note_room)
    head_room, tail_room = room // 3, room - room // 3
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > head_room:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > tail_room:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    if not head and not tail:  # one giant line: cut by characters
        cut = len(text) - room
        return (
            text[:head_room] + f"\n[cut {cut} of {len(text)} characters; to narrow: {hint}]\n" + text[-tail_room:]
        ), True
    dropped = len(lines) - len(head) - len(tail)
    dropped_chars = len(text) - sum(len(x) + 1 for x in head + tail)
    note = (
        f"[cut {dropped} of {len(lines)} lines ({dropped_chars} characters) here to fit the output budget; "
        f"to narrow: {hint}]"
    )
    return "\n".join([*head, note, *tail]), True
