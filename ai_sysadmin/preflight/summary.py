"""The review model's summary of a preflight report: it may raise the verdict, never lower it.

The model gets the report's facts (verdict, reasons, flags, unit plan, closure changes)
inside the untrusted-data envelope -- unit names, package names and reasons come from
the systems being compared, so they are data, not instructions -- and answers, in a
json_schema llama-server enforces, `{"summary", "recommendation", "verdict"}`.

The final verdict is max(deterministic, model).  A model that does not answer within
`review.preflight_model_timeout` (default 25 s, at most 30), or answers badly, is said
in the report and makes the verdict at least warn: the timeout alone never blocks.  When
the model was not asked for explicitly (the review role merely enabled) and its server
cannot be reached at all, that is only a note.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ai_sysadmin.envelope import SYSTEM_RULE, wrap
from ai_sysadmin.preflight.risks import RiskFlag, Severity
from ai_sysadmin.preflight.verdict import decide

if TYPE_CHECKING:
    from ai_sysadmin.config import RoleConfig
    from ai_sysadmin.preflight.check import Report

TEXT_MAX = 200  # bounded so a small model that fills every string still ends within MAX_TOKENS
MAX_UNITS = 80
MAX_CHANGES = 60
MAX_TOKENS = 640

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "recommendation", "verdict"],
    "properties": {
        "summary": {"type": "string", "maxLength": TEXT_MAX},
        "recommendation": {"type": "string", "maxLength": TEXT_MAX},
        "verdict": {"enum": ["ok", "warn", "block"]},
    },
}

PROMPT = (
    "You review a NixOS switch before it happens. A deterministic check already judged it; its verdict is "
    "given below. The facts of the switch follow as data. Answer with a short summary of what the switch "
    "changes and what could break, a recommendation for the admin, and your verdict: ok, warn or block. "
    "Raise the verdict only for a concrete risk in the facts. " + SYSTEM_RULE
)


class ModelStatus(str, enum.Enum):
    OK = "ok"
    TIMEOUT = "timeout"
    FAILED = "failed"  # an error, an answer outside the schema
    UNREACHABLE = "unreachable"  # no server there (connection refused)


@dataclass(frozen=True)
class ModelSummary:
    status: ModelStatus
    role: str
    elapsed_s: float
    summary: str = ""
    recommendation: str = ""
    verdict: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "role": self.role,
            "summary": self.summary,
            "recommendation": self.recommendation,
            "verdict": self.verdict,
            "note": self.note,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def facts(report: Report) -> str:
    """The report as the model sees it: bounded, JSON, all of it untrusted text."""
    data = report.to_json()
    out = {
        "action": data["action"],
        "reasons": data["reasons"],
        "flags": [{"kind": f["kind"], "severity": f["severity"], "message": f["message"]} for f in data["flags"]],
        "units": [f"{u['action']} {u['unit']}" for u in data["units"][:MAX_UNITS]],
        "units_more": max(0, len(data["units"]) - MAX_UNITS),
    }
    if data["closure"] is not None:
        ch = data["closure"]["changes"]
        out["packages"] = [
            f"{c['package']}: {','.join(c['from']) or '-'} -> {','.join(c['to']) or '-'}" for c in ch[:MAX_CHANGES]
        ]
        out["packages_more"] = max(0, len(ch) - MAX_CHANGES)
        out["adds_bytes"] = data["closure"]["added_bytes"]
    return json.dumps(out, ensure_ascii=False)


def fact_chars(role: RoleConfig) -> int:
    """How much of the facts fits the role's context with the answer (about 2 characters a
    token for JSON of names and numbers: pessimistic, so the request is not refused)."""
    return max(1000, (role.context_size - MAX_TOKENS - 400) * 2)


def ask(role: RoleConfig, report: Report, timeout: float) -> ModelSummary:
    """One structured call, bounded by `timeout` seconds in all (connect, retries, answer)."""
    from ai_sysadmin.llm.client import LLMClient
    from ai_sysadmin.llm.errors import LLMError, ModelTimeout, ModelUnavailable

    t0 = time.monotonic()
    # No retries: one attempt fits the budget; the role's own timeout no longer than ours.
    bounded = role.model_copy(
        update={
            "timeout": min(role.timeout, timeout),
            "max_retries": 0,
            "connect_timeout": min(role.connect_timeout, timeout),
        }
    )
    messages = [
        {"role": "system", "content": PROMPT},
        {
            "role": "user",
            "content": f"Deterministic verdict: {report.verdict.value}\n"
            + wrap(facts(report), "preflight", max_chars=fact_chars(role)),
        },
    ]

    async def call() -> dict[str, Any]:
        async with LLMClient(bounded) as client:
            return await client.structured(messages, SCHEMA, name="preflight", max_tokens=MAX_TOKENS)

    def done(status: ModelStatus, note: str, **kw: Any) -> ModelSummary:
        return ModelSummary(status, role.name, time.monotonic() - t0, note=note, **kw)

    try:
        answer = asyncio.run(asyncio.wait_for(call(), timeout))
    except (TimeoutError, ModelTimeout):
        return done(ModelStatus.TIMEOUT, f"the {role.name} model gave no summary within {timeout:g} s")
    except ModelUnavailable as exc:
        return done(ModelStatus.UNREACHABLE, f"the {role.name} model was not reachable ({exc})")
    except LLMError as exc:
        return done(ModelStatus.FAILED, f"the {role.name} model gave no usable summary ({exc})")
    return done(
        ModelStatus.OK,
        "",
        summary=answer["summary"],
        recommendation=answer["recommendation"],
        verdict=answer["verdict"],
    )


def apply(report: Report, model: ModelSummary, explicit: bool) -> Report:
    """The report with the model's part: its verdict can only raise the deterministic one."""
    flag: RiskFlag | None = None
    if model.status is ModelStatus.OK and model.verdict in ("warn", "block"):
        flag = RiskFlag(
            "model-verdict",
            Severity(model.verdict),
            f"the {model.role} model judges this {model.verdict}: {model.recommendation}",
            {"summary": model.summary},
        )
    elif model.status is ModelStatus.UNREACHABLE and not explicit:
        flag = RiskFlag("model-unavailable", Severity.INFO, f"model summary skipped: {model.note}")
    elif model.status is not ModelStatus.OK:
        # Asked for and not there: look at the report yourself.  Never block from this alone.
        flag = RiskFlag("model-unavailable", Severity.WARN, f"no model summary: {model.note}")
    if flag is not None and report.action.value == "dry-activate":  # decides nothing, as the other flags
        flag = replace(flag, severity=Severity.INFO)
    flags = report.flags + ((flag,) if flag else ())
    return replace(report, flags=flags, decision=decide(list(flags)) if flag else report.decision, model=model)
