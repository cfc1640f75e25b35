"""The `trigger` config section: defaults, validation with key paths, rules validated by the rule parser."""

from __future__ import annotations

import pytest

from ai_sysadmin.config import ConfigError, TriggerConfig, parse_config


def test_defaults_when_absent() -> None:
    cfg = parse_config({}, env={})
    assert cfg.trigger == TriggerConfig()
    assert cfg.trigger.window_seconds == 300 and cfg.trigger.model and cfg.trigger.priority_max == 2


def test_values_are_read() -> None:
    rule = {"id": "my-rule", "severity": "high", "category": "other", "pattern": "boom"}
    cfg = parse_config(
        {
            "trigger": {
                "window_seconds": 60,
                "rules": [rule],
                "disabled_rules": ["segfault"],
                "model": False,
                "model_calls_per_minute": 5,
                "burst_factor": 4,
                "priority_max": -1,
            }
        },
        env={},
    )
    t = cfg.trigger
    assert (
        t.window_seconds,
        t.rules,
        t.disabled_rules,
        t.model,
        t.model_calls_per_minute,
        t.burst_factor,
        t.priority_max,
    ) == (60, (rule,), ("segfault",), False, 5.0, 4.0, -1)


def test_every_problem_is_reported_with_its_key_path() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "trigger": {
                    "window_seconds": 0,
                    "burst_factor": 1,
                    "model_batch_size": 99,
                    "model_min_severity": "urgent",
                    "rules": [
                        {"id": "ok-rule", "severity": "high", "category": "other", "pattern": "x"},
                        {"id": "bad", "severity": "high", "category": "weather", "pattern": "x"},
                    ],
                    "disabled_rules": [3, "no-such-rule"],
                    "windw": 5,
                }
            },
            env={},
        )
    paths = {i.path for i in exc.value.issues}
    assert paths == {
        "trigger.window_seconds",
        "trigger.burst_factor",
        "trigger.model_batch_size",
        "trigger.model_min_severity",
        "trigger.rules[1].category",
        "trigger.disabled_rules[0]",
        "trigger.disabled_rules",
        "trigger.windw",
    }
    assert "trigger.windw: unknown key" in str(exc.value)
