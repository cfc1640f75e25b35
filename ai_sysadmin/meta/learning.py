"""Knowledge that learns: every resolved incident is embedded into the `incidents` collection.

`on_resolved(incident)` is the incident service's hook.  It reads what is known about
the incident (title, summary, the latest meta or review finding, the actions taken and
how they ended), writes it to the knowledge base as `incidents/incident-<id>`, and so
later reviews and investigations retrieve it and cite its id.  An embedding failure
keeps the incident for the next call: nothing resolved is lost while the embedder is down.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

MAX_PENDING = 200


class Learner:
    def __init__(self, kb: Any, findings: Any = None):
        # KnowledgeBase, or the process's compose.knowledge.SharedKnowledge (opened on first
        # use; raises while it cannot be opened); None: no embed role, nothing is learned.
        self._kb = kb
        self.findings = findings  # meta.findings.MetaFindings
        self.pending: dict[int, dict[str, Any]] = {}  # incident id -> document not yet embedded
        self.learned: list[int] = []

    async def kb(self) -> Any:
        return self._kb

    async def on_resolved(self, incident: dict[str, Any]) -> None:
        incident_id = incident.get("id")
        if incident_id is None:
            return
        try:
            doc = await self.document(int(incident_id), incident)
        except Exception as exc:  # database down: learn from what the hook gave
            log.warning("meta: reading incident %s for the knowledge base failed: %s", incident_id, exc)
            doc = _from_hook(incident)
        if len(self.pending) < MAX_PENDING:
            self.pending[int(incident_id)] = doc
        await self.flush()

    async def flush(self) -> None:
        try:
            kb = await self.kb()
        except Exception as exc:
            log.warning("meta: knowledge base unavailable (%s); %d incident(s) wait", exc, len(self.pending))
            return
        if kb is None:
            self.pending.clear()
            return
        for incident_id, doc in list(self.pending.items()):
            try:
                await kb.add_incident(incident_id, **doc)
            except Exception as exc:
                log.warning("meta: embedding incident %s failed (%s); kept for the next try", incident_id, exc)
                return
            del self.pending[incident_id]
            self.learned.append(incident_id)

    async def document(self, incident_id: int, hook: dict[str, Any]) -> dict[str, str]:
        doc = _from_hook(hook)
        if self.findings is None:
            return doc
        inc = await self.findings.incident(incident_id)
        if inc is None:
            return doc
        summary = " ".join(x for x in (inc.get("title"), inc.get("summary")) if x)
        units = ", ".join(sorted({t["unit"] for t in inc.get("triggers", []) if t.get("unit")}))
        templates = "; ".join(t["template"] for t in inc.get("triggers", [])[:5])
        doc["summary"] = (
            "; ".join(
                x for x in (summary, f"units: {units}" if units else "", f"log: {templates}" if templates else "") if x
            )
            or doc["summary"]
        )
        diagnosis = inc.get("diagnosis") or ""
        if not diagnosis:
            finding = await self.findings.latest_for_incident(incident_id)
            if finding is not None:
                detail = finding.get("detail") or {}
                root = (detail.get("diagnosis") or {}).get("root_cause") if isinstance(detail, dict) else None
                diagnosis = f"{finding['layer']} finding {finding['id']}: {root or finding['title']}"
        doc["diagnosis"] = diagnosis
        actions = [f"{a['action']} {a['params']} -> {a['status']}" for a in inc.get("actions", [])]
        resolution = inc.get("resolution") or hook.get("resolved_reason") or ""
        if actions:
            resolution = "; ".join(x for x in (resolution, "actions: " + ", ".join(actions)) if x)
        doc["resolution"] = resolution
        ok = [a for a in inc.get("actions", []) if a.get("status") in ("verified", "succeeded")]
        doc["outcome"] = inc.get("outcome") or ("resolved by action and verified" if ok else "resolved by itself")
        return doc


def _from_hook(incident: dict[str, Any]) -> dict[str, str]:
    units = ", ".join(incident.get("units") or [])
    summary = " ".join(
        x
        for x in (str(incident.get("title") or ""), f"(category {incident.get('category')}, units {units or '-'})")
        if x
    )
    return {
        "summary": summary,
        "diagnosis": "",
        "resolution": str(incident.get("resolved_reason") or ""),
        "outcome": "resolved",
    }
