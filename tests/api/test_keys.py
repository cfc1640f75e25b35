"""The API key file: `name:key` or `name[scope,...]:key` lines or one bare key.

Problems name the line, never the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.api.auth import KeyRing
from ai_sysadmin.config import ApiKey, ConfigError, Scope, Secret, parse_config


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


@pytest.mark.parametrize(
    "text,problem",
    [
        ("alice:a\nno-colon-here\n", "line 2: expected `name:key`"),
        ("alice:a\nbob:\n", "line 2: key for 'bob' is empty"),
        ("alice:a\nalice:b\n", "line 2: name 'alice' appears twice"),
        ("alice:same\nbob:same\n", "line 2: same key as another line"),
    ],
)
def test_bad_lines_are_named_without_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _cfg(tmp_path, text)
    msg = str(exc.value)
    assert "api.api_key_file" in msg and problem in msg
    assert "same" not in msg.replace("same key", "")  # the key itself never appears


@pytest.mark.parametrize(
    "data,key,reason",
    [
        ({"max_body_bytes": 100}, "api.max_body_bytes", "must be at least 65536"),
        ({"max_concurrent_per_key": 0}, "api.max_concurrent_per_key", "must be greater than 0"),
        ({"upstream_timeout": -1}, "api.upstream_timeout", "must be greater than 0"),
        ({"background_role": "embed"}, "api.background_role", "must be one of trigger, review, meta"),
    ],
)
def test_limit_keys_are_validated(data, key, reason) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"api": data}, env={})
    assert any(i.path == key and reason in i.reason for i in exc.value.issues), exc.value.issues


def test_keyring_matches_every_key_and_rejects_others() -> None:
    ring = KeyRing([ApiKey("a", Secret("k1", "t")), ApiKey("b", Secret("k2", "t"))], required=True)
    assert ring.match("k1") == "a" and ring.match("k2") == "b"
    assert ring.match("k3") is None and ring.match("") is None and ring.match("k1 ") is None


def test_scopes_are_read_from_the_key_file_and_old_lines_never_approve(tmp_path: Path) -> None:
    """`name[scope,...]:key` states the scopes; an old `name:key` line reads and chats, never approves;
    the `prometheus:` scrape line of docs/openwebui.md reads only; a bare key reads and chats."""
    cfg = _cfg(
        tmp_path,
        "alice[read, approve]:k-a\nopen-webui[chat]:k-w\nbob:k-b\nprometheus:k-p\n"
        "carol[read,chat,approve]:k:with:colons\n",
    )
    got = {k.name: (sorted(k.scopes), k.key.reveal()) for k in cfg.api.keys}
    assert got == {
        "alice": (["approve", "read"], "k-a"),
        "open-webui": (["chat"], "k-w"),
        "bob": (["chat", "read"], "k-b"),
        "prometheus": (["read"], "k-p"),
        "carol": (["approve", "chat", "read"], "k:with:colons"),
    }
    assert Scope.APPROVE not in _cfg(tmp_path, "just-one-key\n").api.keys[0].scopes


@pytest.mark.parametrize(
    "text,problem",
    [
        ("alice[read,admin]:s3cret\n", "line 1: unknown scope 'admin' for 'alice' (scopes: read, chat, approve)"),
        ("bob:b\nalice[ ]:s3cret\n", "line 2: no scope inside [] for 'alice'"),
        ("bob:b\nalice[read:s3cret\n", "line 2: expected `name:key` or `name[scope,...]:key`"),
    ],
)
def test_bad_scopes_are_named_without_the_key(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _cfg(tmp_path, text)
    msg = str(exc.value)
    assert "api.api_key_file" in msg and problem in msg and "s3cret" not in msg


@pytest.mark.parametrize(
    "data,key,reason",
    [
        ({"header_timeout": 0}, "api.header_timeout", "must be greater than 0"),
        ({"keepalive_timeout": -1}, "api.keepalive_timeout", "must be greater than 0"),
        ({"max_unauthenticated_connections": 0}, "api.max_unauthenticated_connections", "must be greater than 0"),
        ({"max_concurrent_rest_per_key": 0}, "api.max_concurrent_rest_per_key", "must be greater than 0"),
    ],
)
def test_connection_limits_are_validated(data, key, reason) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"api": data}, env={})
    assert any(i.path == key and reason in i.reason for i in exc.value.issues), exc.value.issues
    d = parse_config({}, env={}).api
    assert (
        d.header_timeout,
        d.keepalive_timeout,
        d.max_unauthenticated_connections,
        d.max_concurrent_rest_per_key,
    ) == (5.0, 75.0, 1024, 8)
