"""docs/configuration.md, generated from the configuration models (`ai-sysadmin config docs`).

Every key, its default and its meaning come from the field definitions in config.py;
the prose around the tables from the sections' `intro` / `notes`.  tests/test_configdoc.py
fails when the checked-in file differs from `render()`: regenerate it with
`ai-sysadmin config docs > docs/configuration.md`.
"""

from __future__ import annotations

import json
from typing import Any

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

# Sections in the order an admin meets them; `roles` is documented per role.
_ORDER = ("roles", "intervals", "database", "knowledge", "api", "journal", "trigger", "review", "actions", "meta",
          "retention", "spool", "thresholds")


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


def _section(model: type[BaseModel], names: list[str]) -> list[str]:
    out = [f"## {model.title}", ""]  # type: ignore[attr-defined]
    if model.intro:  # type: ignore[attr-defined]
        out += [model.intro, ""]  # type: ignore[attr-defined]
    out += [*_table(model, names), ""]
    if model.notes:  # type: ignore[attr-defined]
        out += [model.notes, ""]  # type: ignore[attr-defined]
    return out


def render() -> str:
    """The whole reference, as docs/configuration.md holds it."""
    top = [n for n in Config.model_fields if n not in _ORDER]
    out = [_HEAD, *_section(Config, top)]
    roles = Config.model_fields["roles"].annotation  # one table for every role, defaults per role
    out += [f"## {roles.title}", "", roles.intro, "",  # type: ignore[union-attr]
            *_table(RoleConfig, list(RoleConfig.model_fields)), "", roles.notes, ""]  # type: ignore[union-attr]
    for name in _ORDER[1:]:
        model = Config.model_fields[name].annotation
        out += _section(model, list(model.model_fields))  # type: ignore[union-attr]
    return "\n".join(out).rstrip() + "\n"
