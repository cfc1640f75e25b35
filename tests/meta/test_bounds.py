"""The bounds that keep one investigation small: the per-result budget, the stored transcript, the diagnosis check."""

from __future__ import annotations

import json

from ai_sysadmin.meta import diagnosis as diag
from ai_sysadmin.meta.tools.budget import fit
from ai_sysadmin.meta.transcript import bound_transcript


def test_fit_keeps_head_and_tail_and_says_how_to_narrow() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 40 for i in range(500))
    out, cut = fit(text, 2000, "add a unit")
    assert cut and len(out) <= 2000
    assert out.startswith("line 0000") and out.rstrip().endswith("x" * 40) and "line 0499" in out
    assert "lines (" in out and "to narrow: add a unit" in out
    same, cut = fit("short", 2000, "x")
    assert (same, cut) == ("short", False)
    blob, cut = fit("y" * 10_000, 1000, "ask for less")  # one giant line
    assert cut and len(blob) <= 1000 and "ask for less" in blob


def test_transcript_is_bounded_and_keeps_the_start_and_the_end() -> None:
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "why?"}]
    messages += [{"role": "tool", "tool_call_id": f"c{i}", "content": "z" * 5000} for i in range(100)]
    messages.append({"role": "assistant", "content": "the end"})
    out = bound_transcript(messages, 20_000)
    assert len(json.dumps(out)) <= 20_000 + 500
    assert out[0]["content"] == "rules" and out[1]["content"] == "why?" and out[-1]["content"] == "the end"
    assert any(m["role"] == "note" and "dropped" in m["content"] for m in out)
    assert all(len(m["content"]) <= 4000 + 40 for m in out)


def test_diagnosis_evidence_is_checked_against_what_was_seen() -> None:
    obj = {
        "root_cause": "disk full",
        "confidence": 0.9,
        "severity": "high",
        "proposed_actions": [],
        "admin_checks": [],
        "evidence": [
            {"kind": "tool_call", "id": "c1", "note": "df"},
            {"kind": "trigger", "id": "made-up", "note": "?"},
        ],
    }
    checked = diag.check(obj, {"tool_call": {"c1"}, "trigger": {"t-1"}})
    assert [e["verified"] for e in checked["evidence"]] == [True, False] and checked["confidence"] == 0.9
    unbacked = diag.check({**obj, "evidence": obj["evidence"][1:]}, {"tool_call": {"c1"}})
    assert unbacked["confidence"] == diag.UNVERIFIED_CONFIDENCE_CAP
    fb = diag.fallback("why?", [{"call_id": "c1", "tool": "disk_usage", "ok": True, "summary": "1 mount"}], "no model")
    assert fb["confidence"] == 0.0 and fb["source"] == "fallback" and fb["evidence"][0]["id"] == "c1"
    assert "Undetermined: no model" in diag.as_text(fb)
