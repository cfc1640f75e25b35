"""The review's answer: a JSON schema llama-server enforces, and the check after it.

The schema is built per review: incident numbers, evidence ids and choice labels are
enums of what the context showed, so the grammar cannot produce an id that does not
exist.  The schema is sent as `response_format` (not in the prompt), so it does not
disturb the prompt cache.  The answer is validated again with jsonschema on arrival.

Shaped for small models, which under a grammar take the cheapest completion and write
fields in the order the schema lists them (llama.cpp's json-schema-to-grammar emits an
object's required properties in the order of `properties`; its JSON keeps insertion
order, and so does Python's `json.dumps`):

* an action is `{"reason", "incident", "choice"}`: the reason is written *before* the
  choice, so the choice follows from the words rather than the words excusing a choice;
  a finding says its summary before its severity and category;
* a choice is the label of one of the incidents' deterministic candidates ("C1".."Cn",
  shown next to each candidate in the prompt; `notify` is always among them).  It
  carries no parameters: they come from the candidate, built from the incident's
  trusted evidence.  No actions means "none".  The whole catalog is not offered here;
  an investigation (`escalate` -> L4) is where it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsonschema

from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES

STATUSES = ("ok", "degraded", "critical")
# Bounds keep a complete answer well within the review role's max_tokens even when a
# small model fills every string to its limit.
MAX_FINDINGS = 3
MAX_ACTIONS = 2
MAX_EVIDENCE = 4
TEXT_MAX = 100


def choice_label(n: int) -> str:
    """The label of the n-th candidate shown (1-based): what the model answers instead of an action."""
    return f"C{n}"


def answer_schema(incident_ids: Sequence[int], evidence_refs: Sequence[str], choices: Sequence[str]) -> dict[str, Any]:
    """`choices`: the candidate labels the prompt showed (context.build: Context.choices)."""
    incident = {"enum": sorted(set(incident_ids))} if incident_ids else {"type": "null"}
    evidence: dict[str, Any] = {"type": "array", "maxItems": MAX_EVIDENCE}
    evidence["items"] = {"enum": list(dict.fromkeys(evidence_refs))} if evidence_refs else {"type": "string"}
    if not evidence_refs:
        evidence["maxItems"] = 0
    text = {"type": "string", "maxLength": TEXT_MAX}
    # Property order is the order the model writes them in (see above): keep it.
    finding = {
        "type": "object",
        "additionalProperties": False,
        "required": ["incident", "summary", "severity", "category", "evidence"],
        "properties": {
            "incident": incident,
            "summary": text,
            "severity": {"enum": list(SEVERITIES)},
            "category": {"enum": list(CATEGORIES)},
            "evidence": evidence,
        },
    }
    labels = list(dict.fromkeys(choices))
    action = {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason", "incident", "choice"],
        "properties": {
            "reason": text,
            "incident": incident,
            "choice": {"enum": labels} if labels else {"type": "string"},
        },
    }
    actions = {"type": "array", "maxItems": MAX_ACTIONS if labels else 0, "items": action}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["status", "findings", "actions", "escalate", "escalate_reason"],
        "properties": {
            "status": {"enum": list(STATUSES)},
            "findings": {"type": "array", "maxItems": MAX_FINDINGS, "items": finding},
            "actions": actions,
            "escalate": {"type": "boolean"},
            "escalate_reason": {"type": "string", "maxLength": 64},
        },
    }


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
