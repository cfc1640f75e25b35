"""The `meta` configuration section: defaults, and every problem named by its key path."""

from __future__ import annotations

import pytest

from ai_sysadmin.config import ConfigError, parse_config
from ai_sysadmin.meta.tools import build_toolset
from ai_sysadmin.meta.tools.budget import budget_chars


def test_defaults_and_the_output_budget() -> None:
    cfg = parse_config({}, env={})
    m = cfg.meta
    assert (m.max_steps, m.tool_choice, m.prefill, m.tools) == (12, "auto", "", None)
    assert m.tool_output_share == 0.15 and m.tool_output_max_chars == 12000
    # 15 % of the meta role's 16384-token context at ~3.5 characters per token, under the cap.
    assert build_toolset(cfg).max_chars == budget_chars(16384, 0.15, 12000) == 8601
    big = parse_config({"roles": {"meta": {"context_size": 131072}}}, env={})
    assert build_toolset(big).max_chars == 12000  # the absolute cap
    narrow = parse_config({"meta": {"tools": ["journal_query", "propose_action"]}}, env={})
    assert build_toolset(narrow).names == ["journal_query", "propose_action"]


def test_problems_are_named_by_key_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {
                "meta": {
                    "max_steps": 0,
                    "tool_choice": "always",
                    "tools": ["journal_query", "rm_rf"],
                    "disk_paths": ["var/log", "/var/../etc"],
                    "tool_output_share": 0.9,
                    "prefill": "x" * 65,
                    "nix_store": "local; rm -rf /",
                    "max_stepz": 3,
                }
            },
            env={},
        )
    found = {i.path: i.reason for i in info.value.issues}
    assert set(found) == {
        "meta.max_steps",
        "meta.tool_choice",
        "meta.tools",
        "meta.disk_paths",
        "meta.tool_output_share",
        "meta.prefill",
        "meta.nix_store",
        "meta.max_stepz",
    }
    assert "unknown tool(s) 'rm_rf'" in found["meta.tools"]
    assert "did you mean 'max_steps'" in found["meta.max_stepz"]
