"""The API key file: `name:key` lines or one bare key; problems name the line, never the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.api.auth import KeyRing
from ai_sysadmin.config import ApiKey, ConfigError, Secret, parse_config


def _cfg(tmp_path: Path, text: str, **api):
    f = tmp_path / "keys"
    f.write_text(text)
    return parse_config({"api": {"api_key_file": str(f), **api}}, env={})


def test_named_keys_and_comments(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "# admins\nalice:s3cret-a\n\nopen-webui: s3cret-b \n")
    assert [(k.name, k.key.reveal()) for k in cfg.api.keys] == [("alice", "s3cret-a"), ("open-webui", "s3cret-b")]
    assert cfg.api.require_auth is True


def test_one_bare_key_is_named_api(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "just-one-key-without-a-name\n")
    assert [(k.name, k.key.reveal()) for k in cfg.api.keys] == [("api", "just-one-key-without-a-name")]


@pytest.mark.parametrize("text,problem", [
    ("alice:a\nno-colon-here\n", "line 2: expected `name:key`"),
    ("alice:a\nbob:\n", "line 2: key for 'bob' is empty"),
    ("alice:a\nalice:b\n", "line 2: name 'alice' appears twice"),
    ("alice:same\nbob:same\n", "line 2: same key as another line"),
])
def test_bad_lines_are_named_without_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _cfg(tmp_path, text)
    msg = str(exc.value)
    assert "api.api_key_file" in msg and problem in msg
    assert "same" not in msg.replace("same key", "")  # the key itself never appears


@pytest.mark.parametrize("data,key,reason", [
    ({"max_body_bytes": 100}, "api.max_body_bytes", "must be at least 65536"),
    ({"max_concurrent_per_key": 0}, "api.max_concurrent_per_key", "must be greater than 0"),
    ({"upstream_timeout": -1}, "api.upstream_timeout", "must be greater than 0"),
    ({"background_role": "embed"}, "api.background_role", "must be one of trigger, review, meta"),
])
def test_limit_keys_are_validated(data, key, reason) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"api": data}, env={})
    assert any(i.path == key and reason in i.reason for i in exc.value.issues), exc.value.issues


def test_keyring_matches_every_key_and_rejects_others() -> None:
    ring = KeyRing([ApiKey("a", Secret("k1", "t")), ApiKey("b", Secret("k2", "t"))], required=True)
    assert ring.match("k1") == "a" and ring.match("k2") == "b"
    assert ring.match("k3") is None and ring.match("") is None and ring.match("k1 ") is None
