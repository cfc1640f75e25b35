"""The one place where untrusted text is made safe to store or to show a model.

Anything from the journal (and so from any local user, or a remote client whose
request an application logs) can hold bytes PostgreSQL refuses -- NUL is not allowed in
`text` or `jsonb` -- or that confuse a terminal or a prompt: other C0/C1 control
characters, lone UTF-16 surrogates (not encodable as UTF-8 at all), bidi overrides.
Such characters are *escaped*, never dropped, so an admin still sees that they were
there (`\\x00`, `\\x1b`, `\\ud800`); the result contains none of them, so sanitising
twice changes nothing.  Tabs and newlines are ordinary text and are kept.

Over-long text is cut with a marker that says how much was cut, so a 1 MiB log line
costs a bounded row and a bounded prompt.

Callers: the store's batch appliers (every row that enters PostgreSQL, direct or from
the outage spool) and the trigger classifier's prompt (which then goes through
`envelope.wrap`, the envelope that keeps log text data).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls except \t \n, DEL, C1 controls, lone surrogates, line/paragraph separators,
# bidi embeddings/overrides/isolates (they reorder what a terminal shows).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")

CUT_MARK = "…[cut: {n} more characters]"
MAX_TEXT = 8192  # default bound for a stored text field
MAX_KEY = 200  # a JSON object key (journal field names are short; hostile ones need not be)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """`text` with every unsafe character replaced by its escape (idempotent)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def bound(text: str, max_chars: int) -> str:
    """Cut `text` to `max_chars` characters plus a marker naming how many were cut."""
    if len(text) <= max_chars:
        return text
    return text[:max_chars] + CUT_MARK.format(n=len(text) - max_chars)


def clean_text(text: str, max_chars: int | None = MAX_TEXT) -> str:
    """Escaped, then bounded: safe for a PostgreSQL text column and for a prompt."""
    if not isinstance(text, str):
        text = str(text)
    if max_chars is None:
        return escape_controls(text)
    if len(text) > max_chars:
        # Cut first (cheap on a 1 MiB line), then escape the kept part (an escape is longer
        # than the character it replaces, so cut that again); the marker counts the original.
        return escape_controls(text[:max_chars])[:max_chars] + CUT_MARK.format(n=len(text) - max_chars)
    return bound(escape_controls(text), max_chars)


def clean_optional(text: str | None, max_chars: int | None = MAX_TEXT) -> str | None:
    return None if text is None else clean_text(text, max_chars)


def clean_json(value: Any, max_chars: int | None = MAX_TEXT, *, depth: int = 0) -> Any:
    """A JSON-able value with every string (keys included) cleaned; safe for a jsonb column."""
    if isinstance(value, str):
        return clean_text(value, max_chars)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        # NaN and infinities are not JSON: PostgreSQL refuses them in jsonb.
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if depth > 20:
        return clean_text(repr(value), max_chars)
    if isinstance(value, dict):
        return {clean_text(str(k), MAX_KEY): clean_json(v, max_chars, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v, max_chars, depth=depth + 1) for v in value]
    return clean_text(str(value), max_chars)
