"""What every investigation tool is: a name, a typed parameter schema, a handler, a result.

Parameters are validated against the tool's JSON schema before the handler runs
(`additionalProperties: false`, patterns for unit names, times and paths), so a hostile
or malformed value never reaches an argv; the error names the field.  Handlers return
plain text for the model (budgeted later) plus optional structured data for the CLI
and the API.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonschema


class ToolError(Exception):
    """A tool could not answer; the message is shown to the model (and the admin)."""


class ParamError(ToolError):
    def __init__(self, field_name: str, reason: str):
        self.field = field_name
        self.reason = reason
        super().__init__(f"invalid argument {field_name}: {reason}")


@dataclass(frozen=True)
class ToolOutput:
    """What a handler produces: text for the model, data for programs."""

    text: str
    data: Any = None
    summary: str = ""  # one line for the step display; derived from the text when empty


@dataclass(frozen=True)
class ToolResult:
    """One executed (or refused) call as the loop and its callers see it."""

    name: str
    ok: bool
    text: str  # already budgeted; the loop wraps it in the untrusted-data envelope
    summary: str
    truncated: bool = False
    data: Any = None
    latency_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "summary": self.summary,
            "truncated": self.truncated,
            "text": self.text,
            "data": self.data,
            "latency_s": round(self.latency_s, 4),
        }


Handler = Callable[[dict[str, Any]], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    handler: Handler
    kind: str = "read"  # read | propose (no tool runs a command that changes the host)
    narrow_hint: str = "ask for a shorter range or fewer lines"

    def definition(self) -> dict[str, Any]:
        """The OpenAI tools-list entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        """The arguments, checked; raises ParamError naming the first bad field."""
        if not isinstance(arguments, dict):
            raise ParamError("(arguments)", "must be a JSON object")
        validator = jsonschema.Draft202012Validator(self.parameters)
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.absolute_path), e.validator))
        if errors:
            err = errors[0]
            where = ".".join(str(p) for p in err.absolute_path)
            if not where and err.validator == "additionalProperties":
                extra = sorted(set(arguments) - set(self.parameters.get("properties", {})))
                return _raise(
                    extra[0] if extra else "(arguments)",
                    "unknown parameter; known: " + ", ".join(sorted(self.parameters.get("properties", {}))) or "none",
                )
            if not where and err.validator == "required":
                missing = [r for r in self.parameters.get("required", []) if r not in arguments]
                return _raise(missing[0] if missing else "(arguments)", "is required")
            return _raise(where or "(arguments)", _short_reason(err))
        return arguments


def _raise(field_name: str, reason: str) -> dict[str, Any]:
    raise ParamError(field_name, reason)


def _short_reason(err: jsonschema.ValidationError) -> str:
    # jsonschema's message repeats the (possibly huge, hostile) value; say what was expected instead.
    v = err.validator
    if v == "pattern":
        described = err.schema.get("description") if isinstance(err.schema, dict) else None
        return "is not an allowed value" + (f" (expected: {described})" if described else "")
    if v == "enum":
        allowed = err.validator_value if isinstance(err.validator_value, list) else []
        return "must be one of " + ", ".join(json.dumps(x) for x in allowed)
    if v == "type":
        return f"must be of type {err.validator_value}"
    if v in ("maxLength", "minLength", "maximum", "minimum", "maxItems", "minItems"):
        return f"violates {v} {err.validator_value}"
    return err.message[:160]


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed parameter object (unknown keys are errors)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


# Shared parameter shapes.  Patterns are anchored and exclude whitespace, quotes and
# shell metacharacters; values go into argv elements, never into a shell.
UNIT = {
    "type": "string",
    "maxLength": 200,
    "description": "systemd unit name, e.g. nginx.service",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9:_.@\\-]{0,190}\.(service|socket|target|timer|mount|automount|path|slice|scope|device|swap)$",  # noqa: E501 (a regex / Nix text / message kept verbatim)
}
# systemd time specs journalctl accepts: relative (-1h, 30m ago is written -30m), absolute, or keywords.
TIME = {
    "type": "string",
    "maxLength": 40,
    "description": "relative like -1h, -30m, -2d, or 'YYYY-MM-DD[ HH:MM[:SS]]', 'today', 'yesterday', 'now'",
    "pattern": r"^(-[0-9]{1,5}(s|m|min|h|d|w)|[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?|today|yesterday|now)$",  # noqa: E501 (a regex / Nix text / message kept verbatim)
}
LIMIT = {"type": "integer", "minimum": 1, "maximum": 500}
