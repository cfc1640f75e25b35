"""The diagnosis an investigation ends with: a json_schema the model must fill, checked after.

The model's object is never trusted as is: evidence ids are checked against what the
investigation really saw (tool call ids, trigger, incident and knowledge ids) and
unknown ones are marked unverified; confidence is capped when nothing verified backs
it; a model that gives no usable object yields a deterministic low-confidence
diagnosis built from the steps.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from ai_sysadmin.vocab import SEVERITIES

EVIDENCE_KINDS = ("tool_call", "trigger", "incident", "knowledge")
UNVERIFIED_CONFIDENCE_CAP = 0.3

# The order is the order the grammar makes a small model write in (llama.cpp keeps the
# schema's property order): the evidence with its notes first, then the root cause read
# from it, the checks, and the actions last, each with its reason before its choice.
# Measured with Qwen2.5-Coder-1.5B (docs/eval.md): with root_cause first it wrote two
# words ("disk usage") and then cited its evidence.
DIAGNOSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "evidence": {
            "type": "array",
            "maxItems": 6,
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": list(EVIDENCE_KINDS)},
                    "id": {"type": "string", "maxLength": 80},
                    "note": {"type": "string", "maxLength": 160},
                },
                "required": ["kind", "id", "note"],
                "additionalProperties": False,
            },
        },
        "root_cause": {"type": "string", "minLength": 1, "maxLength": 400},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "admin_checks": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 160}},
        "proposed_actions": {
            "type": "array",
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "maxLength": 240},
                    "action": {"type": "string", "maxLength": 64},
                    "params": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 200}},
                },
                "required": ["reason", "action", "params"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["evidence", "root_cause", "confidence", "severity", "admin_checks", "proposed_actions"],
    "additionalProperties": False,
}


def _grammar_param(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema as the model's grammar gets it: type and bounds.  Patterns stay
    with the catalog's own validation (the policy applies it to whatever comes back);
    the grammar only has to keep the object finite and the fields of the right kind."""
    if schema.get("type") == "integer":
        return {k: schema[k] for k in ("type", "minimum", "maximum") if k in schema}
    return {"type": "string", "maxLength": min(int(schema.get("maxLength", 200)), 200)}


def diagnosis_schema(catalog: Any = None, only: Iterable[str] | None = None) -> dict[str, Any]:
    """DIAGNOSIS_SCHEMA with `proposed_actions` bound to the catalog: each item names one
    catalog action and only that action's parameters.  A free-form `params` object lets a
    weak model write keys until max_tokens; a bounded one always ends.

    `only`: the actions an incident's evidence supports (its `candidate_actions`), plus
    `notify`; the diagnosis of an incident chooses among these, as the review does.  Measured
    with Qwen2.5-Coder-1.5B: given the whole catalog after writing its reason ("update the
    TLS certificate"), it picked whatever action was left (`nix_store_repair`)."""
    if catalog is None or not catalog.ids():
        return DIAGNOSIS_SCHEMA
    ids = list(catalog.ids())
    if only is not None:
        allowed = {*only, "notify"}
        ids = [a for a in ids if a in allowed]
    variants = []
    for action_id in ids:
        spec = catalog.get(action_id)
        props = spec.parameters.get("properties", {})
        variants.append(
            {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "maxLength": 240},
                    "action": {"type": "string", "enum": [action_id]},
                    "params": {
                        "type": "object",
                        "properties": {name: _grammar_param(sub) for name, sub in props.items()},
                        "required": [n for n in spec.parameters.get("required", []) if n in props],
                        "additionalProperties": False,
                    },
                },
                "required": ["reason", "action", "params"],
                "additionalProperties": False,
            }
        )
    schema = copy.deepcopy(DIAGNOSIS_SCHEMA)
    if not variants:  # nothing to choose from: the list stays empty
        schema["properties"]["proposed_actions"] = {"type": "array", "maxItems": 0}
        return schema
    schema["properties"]["proposed_actions"] = {"type": "array", "maxItems": 3, "items": {"anyOf": variants}}
    return schema


def check(diagnosis: dict[str, Any], known: dict[str, Iterable[str]]) -> dict[str, Any]:
    """The model's diagnosis with each evidence item marked verified or not, confidence capped."""
    known_sets = {k: {str(x) for x in v} for k, v in known.items()}
    evidence = []
    for item in diagnosis.get("evidence", []):
        kind, ident = item.get("kind"), str(item.get("id", ""))
        verified = ident in known_sets.get(kind, set())
        evidence.append({**item, "verified": verified})
    out = {**diagnosis, "evidence": evidence, "source": "model"}
    confidence = float(diagnosis.get("confidence", 0.0))
    if not any(e["verified"] for e in evidence):
        confidence = min(confidence, UNVERIFIED_CONFIDENCE_CAP)
    out["confidence"] = round(max(0.0, min(1.0, confidence)), 3)
    return out


def fallback(question: str, steps: list[dict[str, Any]], why: str, severity: str = "info") -> dict[str, Any]:
    """A recorded diagnosis when the model gave none: what was looked at, and that it is undetermined."""
    ok = [s for s in steps if s.get("ok") and not s.get("refused")]
    failed = [s for s in steps if not s.get("ok")]
    looked = ", ".join(f"{s['tool']} ({s['call_id']})" for s in ok[:6]) or "nothing"
    return {
        "root_cause": f"Undetermined: {why}. Tools that answered: {looked}.",
        "confidence": 0.0,
        "severity": severity if severity in SEVERITIES else "info",
        "evidence": [
            {"kind": "tool_call", "id": s["call_id"], "note": s.get("summary", "")[:200], "verified": True}
            for s in ok[:8]
        ],
        "proposed_actions": [],
        "admin_checks": [f"Investigate by hand: {question[:150]}"]
        + ([f"{len(failed)} tool call(s) failed; see the transcript"] if failed else []),
        "source": "fallback",
    }


def as_text(diagnosis: dict[str, Any]) -> str:
    """The diagnosis as a short answer, when the model gave no prose answer."""
    parts = [str(diagnosis.get("root_cause", "")).strip()]
    cited = [f"{e['kind']} {e['id']}" for e in diagnosis.get("evidence", []) if e.get("verified")]
    if cited:
        parts.append("Evidence: " + ", ".join(cited[:6]) + ".")
    checks = [str(c) for c in diagnosis.get("admin_checks", [])[:3]]
    if checks:
        parts.append("Check: " + "; ".join(checks) + ".")
    return " ".join(p for p in parts if p)
