"""The configuration as pydantic models: frozen, copied with changes, cross-key problems reported with the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from ai_sysadmin.config import ApiConfig, ConfigError, TriggerConfig, parse_config
from ai_sysadmin.vocab import AUTONOMY_LEVELS, SEVERITIES, TOOL_NAMES


def test_models_are_frozen_and_copied_with_changes() -> None:
    cfg = parse_config({}, env={})
    with pytest.raises(pydantic.ValidationError):
        cfg.trigger.window_seconds = 5  # type: ignore[misc]
    fast = cfg.trigger.model_copy(update={"model_calls_per_minute": 1e9})
    assert fast.model_calls_per_minute == 1e9 and cfg.trigger.model_calls_per_minute == 30.0
    assert cfg.model_copy(update={"autonomy_level": "observe"}).autonomy_level == "observe"
    assert TriggerConfig() == cfg.trigger


def test_cross_key_problems_come_with_the_value_problems() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "api": {"port": 0, "host": "0.0.0.0", "require_auth": False},
                "journal": {"source": "file", "poth": "/x"},
                "knowledge": {"path": "relative", "url": "http://h:8000"},
            },
            env={},
        )
    assert [i.path for i in info.value.issues] == sorted(i.path for i in info.value.issues)
    assert {i.path for i in info.value.issues} == {
        "api.port",
        "api.api_key_file",
        "api.require_auth",
        "journal.poth",
        "journal.path",
        "knowledge.path",
        "knowledge.url",
    }


def test_defaults_settle_without_a_document() -> None:
    assert ApiConfig().require_auth is False and ApiConfig().keys == ()
    cfg = parse_config({"roles": {"embed": {}}}, env={})
    assert cfg.roles.embed is not None and cfg.roles.embed.name == "embed" and cfg.roles.embed.max_tokens == 0


def test_secrets_are_masked_in_a_dump(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("alice[read]:topsecret\n")
    cfg = parse_config({"api": {"api_key_file": str(key)}}, env={})
    dumped = json.dumps(cfg.model_dump(mode="json"))
    assert "topsecret" not in dumped and "<secret>" in dumped
    assert cfg.api.api_key_file == str(key) and cfg.api.keys[0].name == "alice"


def test_the_vocabulary_is_what_the_config_accepts() -> None:
    assert parse_config({"review": {"early_severity": SEVERITIES[-1]}}, env={}).review.early_severity == "info"
    assert parse_config({"meta": {"tools": list(TOOL_NAMES)}}, env={}).meta.tools == TOOL_NAMES
    for level in AUTONOMY_LEVELS:
        assert parse_config({"autonomy_level": level}, env={}).autonomy_level == level
