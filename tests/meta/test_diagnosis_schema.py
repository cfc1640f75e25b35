"""The diagnosis schema a small model writes under (meta/diagnosis.py, docs/meta.md)."""

from __future__ import annotations

from pathlib import Path

from ai_sysadmin.actions.catalog import load_catalog
from ai_sysadmin.meta import diagnosis as diag
from ai_sysadmin.meta.loop import Investigator
from ai_sysadmin.meta.tools import build_toolset
from tests.meta.conftest import meta_config


def _actions(schema: dict) -> list[str]:
    items = schema["properties"]["proposed_actions"].get("items", {}).get("anyOf", [])
    return [v["properties"]["action"]["enum"][0] for v in items]


def test_evidence_comes_first_and_each_actions_reason_before_its_choice() -> None:
    schema = diag.diagnosis_schema(load_catalog())
    assert list(schema["properties"])[:2] == ["evidence", "root_cause"]
    assert list(schema["properties"])[-1] == "proposed_actions"
    for variant in schema["properties"]["proposed_actions"]["items"]["anyOf"]:
        assert list(variant["properties"]) == ["reason", "action", "params"]


def test_an_incidents_diagnosis_chooses_among_its_supported_actions_and_notify() -> None:
    catalog = load_catalog()
    assert set(_actions(diag.diagnosis_schema(catalog))) == set(catalog.ids())
    only = _actions(diag.diagnosis_schema(catalog, only=["restart_unit", "reset_failed_unit"]))
    assert sorted(only) == ["notify", "reset_failed_unit", "restart_unit"]
    # An id the catalog does not have adds nothing.
    assert _actions(diag.diagnosis_schema(catalog, only=["no_such_action"])) == ["notify"]


def test_the_loop_binds_the_schema_to_the_incident(tmp_path: Path) -> None:
    cfg = meta_config(tmp_path, None, url="http://127.0.0.1:9")
    inv = Investigator(cfg, None, build_toolset(cfg), None)  # type: ignore[arg-type]
    assert inv._schema_for(None) is inv.diagnosis_schema  # a question without an incident: the catalog
    assert inv._schema_for({"candidate_actions": None}) is inv.diagnosis_schema  # a row from before the column
    bound = inv._schema_for({"candidate_actions": ["vacuum_journal", "collect_garbage"]})
    assert sorted(_actions(bound)) == ["collect_garbage", "notify", "vacuum_journal"]
    # An incident attributed to a NixOS switch also supports its rollback (as for `contradicts`).
    switched = inv._schema_for({"candidate_actions": ["restart_unit"], "switched": True})
    assert sorted(_actions(switched)) == ["notify", "restart_unit", "rollback_generation"]
