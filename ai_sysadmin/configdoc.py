"""docs/configuration.md, generated from the configuration models (`ai-sysadmin config docs`).

Every key, its default and its meaning come from the field definitions in config.py;
the prose around the tables from the sections' `intro` / `notes`.  tests/test_configdoc.py
fails when the checked-in file differs from `render()`: regenerate it with
`ai-sysadmin config docs > docs/configuration.md`.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic import BaseModel

from ai_sysadmin.config import ROLE_CLASSES, Config, RoleConfig

_HEAD = """# Configuration reference

<!-- Generated from ai_sysadmin/config.py by `ai-sysadmin config docs > docs/configuration.md`; do not edit. -->

`ai-sysadmin` reads one JSON document: `--config PATH` (before or after the subcommand:
`ai-sysadmin --config c.json doctor` and `ai-sysadmin doctor --config c.json` are the same), else `$AI_SYSADMIN_CONFIG`,
else the built-in defaults (an empty `{}`). On NixOS the module renders it from
`services.ai-sysadmin.settings` (see [nixos.md](nixos.md)); do not edit it by hand there.

Validation runs before anything starts and reports **every** problem with its key
path (`roles.trigger.url: not an http(s) URL`). Unknown keys are errors, with a
suggestion for likely typos (`roles.trigger.timout: unknown key (did you mean 'timeout'?)`).
`ai-sysadmin config check` validates; `config show` prints the effective values with secrets masked.

## Secrets

No secret is ever written into the JSON (on NixOS it would land in the world-readable
Nix store). Keys ending in `_file` take either

* an absolute path to a file holding the secret (trailing newline ignored), or
* a bare credential name such as `"api-key"`, resolved in `$CREDENTIALS_DIRECTORY` —
  the directory where systemd puts credentials passed with `LoadCredential=api-key:/run/keys/ai-sysadmin-api`.

A missing, empty or unreadable file is a configuration error naming the key.
"""


class Prose(NamedTuple):
    """The words around one section's table."""

    title: str
    intro: str
    notes: str


# The sections in the order an admin meets them ("": the top-level keys).  `roles` is one
# table for every role, with each role's default.
SECTIONS: dict[str, Prose] = {
    "": Prose(
        "Top level",
        "",
        """\
The safe defaults (always protected unless `protected_units_replace` is set): `sshd`,
`systemd-journald`, `systemd-logind`, `dbus`, `dbus-broker`, `nix-daemon`,
`systemd-networkd`, `NetworkManager`, `postgresql`, `polkit` (all `.service`), and the
globs `ai-sysadmin*.service` and `llama-*.service` (the service's own units, its executor
and the model servers); and what keeps a NixOS host reachable: `sshd.socket` with its
per-connection `sshd@*.service` (`services.openssh.startWhenNeeded`), `user@0.service`,
`dhcpcd.service`, `firewall.service`, `systemd-resolved.service`,
`systemd-journald@*.service` and `systemd-journald*.socket`. `ai-sysadmin config show` prints the effective list.""",
    ),
    "roles": Prose(
        "`roles.<name>` — model servers",
        """\
`trigger`, `review` and `meta` exist by default; `embed` (embeddings for the knowledge
base) is off until configured. Every role speaks the OpenAI API (llama-server, or any
compatible server such as Ollama).""",
        """\
Failures reach callers typed: *unavailable* (connection refused, 503 loading —
reported at once, not after the SDK's 10-minute default), *timeout*, *bad output*
(invalid JSON, schema violation, malformed tool call), *rejected* (4xx, e.g. prompt
longer than the context).""",
    ),
    "intervals": Prose("`intervals`", "", ""),
    "database": Prose("`database`", "", ""),
    "knowledge": Prose("`knowledge`", "", ""),
    "api": Prose(
        "`api`",
        "",
        """\
The key file holds one line per key, `name[scope,...]:key`, where the scopes are any of

| scope | allows |
|---|---|
| `read` | `GET /api/v1/status`, `/api/v1/incidents[/ID]`, `/api/v1/actions[/ID]`, `/metrics`, `/v1/models` |
| `chat` | `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` |
| `approve` | `POST /api/v1/actions/ID/approve` and `.../reject` |

A key without the scope an endpoint needs gets 403 with `code: "insufficient_scope"` and a
message naming the missing scope.  A line without `[...]` (`name:key`, the format before
scopes) gets `read,chat` -- it can never approve; the line named `prometheus` gets `read`
only.  One bare key (no name) is named `api` and gets `read,chat`.  **Upgrading:** give
every key that approves actions `approve` explicitly, e.g. `alice[read,approve]:...`.
Blank lines and `#` comments are skipped.  The name is what the audit trail records as
the actor when a key approves or rejects an action; approving and rejecting always need
a key with `approve`, also on loopback.  Errors in the file name the line, never the key:

```
# /run/keys/ai-sysadmin-api: name[scopes]:key
alice[read,chat,approve]:3f9c0d6e2b8a4f1e9d7c5b3a1f0e2d4c
open-webui[chat]:8e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b
prometheus[read]:0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
```

Keys are compared in constant time (SHA-256 digests, `hmac.compare_digest` against
every key).  Without keys (loopback only) any `Authorization` header is ignored, so
clients that always send one, like Open WebUI, still work; such callers may read and
chat, and nobody can approve through the API.

The keys `upstream_idle_timeout`, `client_tools` and `background_max_tokens` shape what the
API does to chat requests and model streams for Open WebUI and similar clients
([openwebui.md](openwebui.md#open-webui-on-a-small-host)).""",
    ),
    "journal": Prose(
        "`journal`",
        "",
        """\
Where reading resumes is not a file: the journal cursor is stored in PostgreSQL (table
`cursors`) in the same transaction as the triggers it covers, with the number of the L1
checkpoint state in `<state_dir>/trigger/checkpoints/` ([triggers.md](triggers.md)). The
former `cursor_file` key is rejected with that explanation.""",
    ),
    "trigger": Prose("`trigger` — Layer 1 (details: [triggers.md](triggers.md))", "", ""),
    "review": Prose(
        "`review` — incidents, context (L2) and review (L3) (details: [review.md](review.md))",
        "",
        "The review runs every `intervals.review` seconds (default 900).",
    ),
    "actions": Prose(
        "`actions` — policy and executor (details: [actions.md](actions.md))",
        """\
The same section is read by the service (the policy when proposing) and by the executor
(its own rendered copy: it re-checks everything with *its* values).""",
        """\
Breakers have no window: one failed verification opens the breaker on its target until
a person runs `ai-sysadmin actions clear-breaker TARGET`.""",
    ),
    "meta": Prose("`meta` — L4 investigations (details: [meta.md](meta.md))", "", ""),
    "retention": Prose("`retention` — storage (details: [storage.md](storage.md))", "", ""),
    "spool": Prose("`spool` — the outage spool (details: [storage.md](storage.md))", "", ""),
    "thresholds": Prose("`thresholds` — metrics (details: [storage.md](storage.md))", "", ""),
    "fleet": Prose(
        "`fleet` — many hosts (details: [fleet.md](fleet.md))",
        "",
        """\
On NixOS the module fills these from `services.ai-sysadmin.fleet` (role, host id, hub
journal directory, member hub URL, database URL and password credential). A key of the
other role is an error. What is built so far: [fleet.md](fleet.md).""",
    ),
}


def _value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, str) and v.startswith(("/", "http://", "https://")):
        return f"`{v}`"
    return f"`{json.dumps(list(v) if isinstance(v, tuple) else v)}`"


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    shown = (field.json_schema_extra or {}).get("shown") if isinstance(field.json_schema_extra, dict) else None
    if shown is not None:
        return str(shown)
    if model is RoleConfig:  # per role: one value when all agree, else each role's
        values = {role: cls.model_fields[name].default for role, cls in ROLE_CLASSES.items()}
        if len(set(map(repr, values.values()))) == 1:
            return _value(next(iter(values.values())))
        return ", ".join(f"{role} {_value(v)}" for role, v in values.items())
    return _value(field.default)


def _table(model: type[BaseModel], names: list[str]) -> list[str]:
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for name in names:
        meaning = (model.model_fields[name].description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {_default(model, name)} | {meaning} |".replace("|  |", "| |"))
    return rows


def _section(prose: Prose, model: type[BaseModel], names: list[str]) -> list[str]:
    out = [f"## {prose.title}", ""]
    if prose.intro:
        out += [prose.intro, ""]
    out += [*_table(model, names), ""]
    if prose.notes:
        out += [prose.notes, ""]
    return out


def render() -> str:
    """The whole reference, as docs/configuration.md holds it."""
    out = [_HEAD]
    for key, prose in SECTIONS.items():
        if key == "":
            out += _section(prose, Config, [n for n in Config.model_fields if n not in SECTIONS])
        elif key == "roles":
            out += _section(prose, RoleConfig, list(RoleConfig.model_fields))
        else:
            model = Config.model_fields[key].annotation
            out += _section(prose, model, list(model.model_fields))  # type: ignore[arg-type,union-attr]
    return "\n".join(out).rstrip() + "\n"
