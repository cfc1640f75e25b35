"""The review answer's shape for small models: choices among candidate labels, reason first.

Pure checks of review.schema and of what the context shows; the tiny-model plumbing
(tests/review/test_review_model.py) checks that a real llama-server answers in it.
"""

from __future__ import annotations

import json

import pytest

from ai_sysadmin.context.build import build_context
from ai_sysadmin.review.candidates import candidates_for
from ai_sysadmin.review.reviewer import labelled
from ai_sysadmin.review.schema import InvalidAnswer, answer_schema, parse_answer
from rig.review import service
from tests.review.conftest import review_cfg


def _answer(**action: object) -> str:
    return json.dumps(
        {"status": "degraded", "findings": [], "escalate": False, "escalate_reason": "", "actions": [action]}
    )


def test_choices_are_only_candidate_labels_and_carry_no_parameters() -> None:
    schema = answer_schema([1, 2], ["I1", "I2"], ["C1", "C2", "C3"])
    item = schema["properties"]["actions"]["items"]
    assert item["properties"]["choice"] == {"enum": ["C1", "C2", "C3"]}
    assert set(item["properties"]) == {"reason", "incident", "choice"}  # no action id, no params
    assert item["additionalProperties"] is False and schema["properties"]["actions"]["maxItems"] == 2
    ok = parse_answer(_answer(reason="myapp crash-loops", incident=1, choice="C2"), "stop", schema)
    assert ok["actions"][0]["choice"] == "C2"
    with pytest.raises(InvalidAnswer, match="actions/0"):  # parameters cannot ride along with a choice
        parse_answer(_answer(reason="r", incident=1, choice="C1", params={"unit": "haproxy.service"}), "stop", schema)
    with pytest.raises(InvalidAnswer, match="choice"):  # an action id is not a choice
        parse_answer(_answer(reason="r", incident=1, choice="restart_unit"), "stop", schema)
    with pytest.raises(InvalidAnswer, match="choice"):  # nor is a label that was not shown
        parse_answer(_answer(reason="r", incident=1, choice="C4"), "stop", schema)
    # no candidates shown: no actions at all
    empty = answer_schema([1], ["I1"], [])
    assert empty["properties"]["actions"]["maxItems"] == 0
    with pytest.raises(InvalidAnswer):
        parse_answer(_answer(reason="r", incident=1, choice="C1"), "stop", empty)


def test_reason_before_choice_and_summary_before_severity_in_the_json_sent() -> None:
    """llama.cpp's grammar emits properties in the order `properties` lists them, and its JSON
    keeps insertion order: the order must survive serialisation to the request."""
    sent = json.dumps({"response_format": {"json_schema": {"schema": answer_schema([1], ["I1"], ["C1"])}}})
    item = json.loads(sent)["response_format"]["json_schema"]["schema"]["properties"]["actions"]["items"]
    assert list(item["properties"]) == ["reason", "incident", "choice"]
    assert item["required"] == ["reason", "incident", "choice"]
    finding = json.loads(sent)["response_format"]["json_schema"]["schema"]["properties"]["findings"]["items"]
    props = list(finding["properties"])
    assert props.index("summary") < props.index("severity") < props.index("category")
    assert sent.index('"reason"') < sent.index('"choice"')


async def test_the_prompt_shows_labels_and_no_catalog(tmp_path) -> None:
    cfg = review_cfg(tmp_path, "http://127.0.0.1:9")
    svc = service(cfg, client=None)
    svc.budget = 4000
    incs = list(svc.incidents())
    cands = {i.key: candidates_for(i, lambda u: False) for i in incs}
    choices = labelled(incs, cands)
    ctx = await build_context(await svc._inputs(incs, cands), svc.counter, svc.budget)
    assert ctx.choices == list(choices) == [f"C{n}" for n in range(1, len(choices) + 1)]
    for label, (_inc, action, params) in choices.items():
        assert f"{label} = {action} {json.dumps(params, sort_keys=True)}" in ctx.user
    assert "Action catalog" not in ctx.system and "collect_garbage (risk" not in ctx.system
    assert "choice" in ctx.system and "reason (first" in ctx.system
