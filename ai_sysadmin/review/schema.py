"""The review's answer: a JSON schema llama-server enforces, and the check after it.

The schema is built per review: incident numbers, evidence ids and action ids are
enums of what the context showed, so the grammar cannot produce an id that does not
exist.  The schema is sent as `response_format` (not in the prompt), so it does not
disturb the prompt cache.  The answer is validated again with jsonschema on arrival.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import jsonschema

from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES

STATUSES = ("ok", "degraded", "critical")
# Bounds keep a complete answer well within the review role's max_tokens even when a
# small model fills every string to its limit.
MAX_FINDINGS = 3
MAX_ACTIONS = 2
MAX_EVIDENCE = 4
TEXT_MAX = 100
PARAM_TEXT_MAX = 64


def params_schema(catalog: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Every parameter name the catalog knows, typed, none required: bounded for the grammar;
    each action's own schema is checked by the catalog afterwards (a bad one is rejected)."""
    props: dict[str, Any] = {}
    for a in catalog:
        for name, spec in a.get("parameters", {}).get("properties", {}).items():
            kind = spec.get("type", "string")
            props[name] = ({"type": "string", "maxLength": min(spec.get("maxLength", PARAM_TEXT_MAX), PARAM_TEXT_MAX)}
                           if kind == "string" else {"type": kind})
    return {"type": "object", "properties": props, "additionalProperties": False}


def answer_schema(incident_ids: Sequence[int], evidence_refs: Sequence[str], action_ids: Sequence[str],
                  catalog: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    incident = {"enum": sorted(set(incident_ids))} if incident_ids else {"type": "null"}
    evidence: dict[str, Any] = {"type": "array", "maxItems": MAX_EVIDENCE}
    evidence["items"] = {"enum": list(dict.fromkeys(evidence_refs))} if evidence_refs else {"type": "string"}
    if not evidence_refs:
        evidence["maxItems"] = 0
    text = {"type": "string", "maxLength": TEXT_MAX}
    finding = {"type": "object", "additionalProperties": False,
               "required": ["incident", "severity", "category", "summary", "evidence"],
               "properties": {"incident": incident, "severity": {"enum": list(SEVERITIES)},
                              "category": {"enum": list(CATEGORIES)}, "summary": text, "evidence": evidence}}
    action = {"type": "object", "additionalProperties": False, "required": ["action", "params", "incident", "reason"],
              "properties": {"action": {"enum": list(action_ids)}, "params": params_schema(catalog) if catalog else {"type": "object"},
                             "incident": incident, "reason": text}}
    return {"type": "object", "additionalProperties": False,
            "required": ["status", "findings", "actions", "escalate", "escalate_reason"],
            "properties": {"status": {"enum": list(STATUSES)},
                           "findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": finding},
                           "actions": {"type": "array", "maxItems": MAX_ACTIONS, "items": action},
                           "escalate": {"type": "boolean"}, "escalate_reason": {"type": "string", "maxLength": 64}}}


class InvalidAnswer(Exception):
    """The model's text is not a valid answer; `str()` is what the retry shows the model."""


def parse_answer(text: str, finish_reason: str | None, schema: dict[str, Any]) -> dict[str, Any]:
    if finish_reason == "length":
        raise InvalidAnswer("the answer was cut off at the token limit; answer shorter, with fewer findings")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    try:
        jsonschema.validate(obj, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise InvalidAnswer(f"does not match the schema at {where}: {exc.message[:200]}") from None
    return obj
