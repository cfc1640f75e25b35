"""The API key file: one `name[scope,...]:key` per line (or one bare key), and what each scope allows.

The configuration validates the file when it loads (`api.api_key_file`, config.py);
api/auth.py checks requests against the parsed keys.  docs/configuration.md describes
the format for admins.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ai_sysadmin.secret import Secret


class Scope(StrEnum):
    """What an API key may do (the key file's `name[scope,...]:key`)."""

    READ = "read"  # status, incidents, actions (GET), /metrics, /v1/models
    CHAT = "chat"  # /v1/chat/completions, /v1/embeddings, /v1/models
    APPROVE = "approve"  # POST /api/v1/actions/ID/approve and .../reject


# A key line without scopes (the format before scopes existed) may read and chat, never
# approve: approving needs `approve` written out.  The scrape key that docs/openwebui.md
# has always called `prometheus:` reads only.
DEFAULT_KEY_SCOPES = frozenset({Scope.READ, Scope.CHAT})
SCRAPE_KEY_NAME = "prometheus"
SCRAPE_KEY_SCOPES = frozenset({Scope.READ})


@dataclass(frozen=True)
class ApiKey:
    """One bearer key of the API; `name` is the actor recorded on approvals."""

    name: str
    key: Secret
    scopes: frozenset[Scope] = DEFAULT_KEY_SCOPES


_KEY_NAME_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,64})(?:\[(?P<scopes>[^\]]*)\])?$")


def parse_api_keys(text: str, source: str) -> tuple[ApiKey, ...]:
    """The API key file: one `name:key` or `name[scope,...]:key` per line, or one bare key (named `api`).

    Scopes are `read`, `chat`, `approve`; a line without them gets DEFAULT_KEY_SCOPES
    (read, chat), the `prometheus` line SCRAPE_KEY_SCOPES (read), a bare key the defaults.
    Blank lines and `#` comments are skipped.  Invalid lines are left out; validation
    reports them (`key_file_problems`).
    """
    return _parse_key_lines(text, source)[0]


def key_file_problems(secret: Secret) -> list[str]:
    """Problems of the key file, each naming its line, never the key."""
    return [f"{secret.source}: {p}" for p in _parse_key_lines(secret.reveal(), secret.source)[1]]


def _parse_key_lines(text: str, source: str) -> tuple[tuple[ApiKey, ...], list[str]]:
    lines = [
        (n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip() and not ln.strip().startswith("#")
    ]
    problems: list[str] = []
    keys: list[ApiKey] = []
    for lineno, line in lines:
        head, sep, value = line.partition(":")
        m = _KEY_NAME_RE.match(head.strip()) if sep else None
        if m is None:
            if len(lines) == 1:  # one bare key (it may contain ':' itself)
                keys.append(ApiKey("api", Secret(line, source)))
                continue
            problems.append(
                f"line {lineno}: expected `name:key` or `name[scope,...]:key` (name: letters, digits, _ . @ -)"
            )
            continue
        name, value = m["name"], value.strip()
        scopes, problem = _key_scopes(name, m["scopes"])
        if problem:
            problems.append(f"line {lineno}: {problem}")
        elif not value:
            problems.append(f"line {lineno}: key for {name!r} is empty")
        elif any(k.name == name for k in keys):
            problems.append(f"line {lineno}: name {name!r} appears twice")
        elif any(k.key.reveal() == value for k in keys):
            problems.append(f"line {lineno}: same key as another line")
        else:
            keys.append(ApiKey(name, Secret(value, source), scopes))
    return tuple(keys), problems


def _key_scopes(name: str, written: str | None) -> tuple[frozenset[Scope], str | None]:
    """The scopes of one key line: those written in `[...]`, else the default for its name."""
    if written is None:
        return (SCRAPE_KEY_SCOPES if name == SCRAPE_KEY_NAME else DEFAULT_KEY_SCOPES), None
    known = ", ".join(s.value for s in Scope)
    words = [w.strip() for w in written.split(",") if w.strip()]
    if not words:
        return frozenset(), f"no scope inside [] for {name!r} (scopes: {known})"
    unknown = [w for w in words if w not in {s.value for s in Scope}]
    if unknown:
        return frozenset(), f"unknown scope {unknown[0]!r} for {name!r} (scopes: {known})"
    return frozenset(Scope(w) for w in words), None
