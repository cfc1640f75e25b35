"""The configuration contract: defaults, every kind of invalid input, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ai_sysadmin.config import (
    AUTONOMY_LEVELS,
    DEFAULT_PROTECTED_UNITS,
    ConfigError,
    Secret,
    load_config,
    parse_config,
)


def problems(data: object, env: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, env=env or {})
    return {i.path: i.reason for i in info.value.issues}


def test_empty_document_is_a_valid_local_config() -> None:
    cfg = parse_config({}, env={"HOME": "/home/alice"})
    assert cfg.autonomy_level == "suggest"
    assert cfg.roles.trigger.url == "http://127.0.0.1:40080"
    assert cfg.roles.review.url == "http://127.0.0.1:40081"
    assert cfg.roles.meta.url == "http://127.0.0.1:40082"
    assert cfg.roles.embed is None
    assert [r.name for r in cfg.roles.enabled()] == ["trigger", "review", "meta"]
    assert cfg.api.host == "127.0.0.1" and cfg.api.port == 40083 and cfg.api.require_auth is False
    assert cfg.journal.source == "system"
    assert cfg.protected_units == DEFAULT_PROTECTED_UNITS
    assert cfg.knowledge.path == os.path.join(cfg.state_dir, "knowledge")
    assert not hasattr(cfg.journal, "cursor_file")  # the cursor lives in PostgreSQL with its triggers


def test_state_dir_follows_systemd_state_directory() -> None:
    cfg = parse_config({}, env={"STATE_DIRECTORY": "/var/lib/ai-sysadmin"})
    assert cfg.state_dir == "/var/lib/ai-sysadmin"
    assert cfg.knowledge.path == "/var/lib/ai-sysadmin/knowledge"


def test_full_document_round_trips(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("s3cret\n")
    data = {
        "state_dir": str(tmp_path),
        "autonomy_level": "auto-safe",
        "log_level": "debug",
        "roles": {
            "trigger": {
                "url": "http://127.0.0.1:1234/",
                "model": "smollm2",
                "timeout": 5,
                "max_tokens": 64,
                "context_size": 2048,
                "max_retries": 0,
                "connect_timeout": 0.5,
            },
            "review": {"enable": False},
            "meta": {"url": "https://gpu-box.lan:8443", "api_key_file": str(key)},
            "embed": {"url": "http://127.0.0.1:40084", "model": "nomic-embed"},
        },
        "intervals": {"metrics": 10, "review": 300.5},
        "database": {"socket_dir": "/run/postgresql", "name": "aisys", "user": "aisys", "port": 5433},
        "knowledge": {"url": "http://127.0.0.1:8000"},
        "api": {"host": "::1", "port": 8080},
        "journal": {"source": "directory", "path": "/var/log/journal"},
        "protected_units": ["sshd.service", "getty@tty1.service"],
    }
    cfg = parse_config(data, env={})
    assert cfg.roles.trigger.url == "http://127.0.0.1:1234"  # trailing slash normalised
    assert cfg.roles.trigger.timeout == 5.0 and isinstance(cfg.roles.trigger.timeout, float)
    assert cfg.roles.review.enable is False
    assert [r.name for r in cfg.roles.enabled()] == ["trigger", "meta", "embed"]
    assert cfg.roles.meta.api_key == Secret("s3cret", "x")
    assert cfg.intervals.review == 300.5
    assert cfg.knowledge.url == "http://127.0.0.1:8000"
    assert "port=5433" in cfg.database.conninfo() and "dbname=aisys" in cfg.database.conninfo()
    # A user's list adds to the safe defaults: listing one unit must not unprotect sshd or the database.
    assert cfg.protected_units == (*DEFAULT_PROTECTED_UNITS, "getty@tty1.service")


def test_protected_units_defaults_globs_and_knowing_replacement() -> None:
    from ai_sysadmin.config import unit_is_protected

    cfg = parse_config({"protected_units": ["nginx.service", "backup-*.timer"]}, env={})
    for unit in (
        "sshd.service",
        "polkit.service",
        "postgresql.service",
        "ai-sysadmin-executor.service",
        "ai-sysadmin-anything.service",
        "llama-review.service",
        "llama-custom.service",
        "nginx.service",
        "backup-daily.timer",
        "sshd",
    ):
        assert unit_is_protected(unit, cfg.protected_units), unit
    for unit in ("nginx-exporter.service", "backup-daily.service", "myapp.service"):
        assert not unit_is_protected(unit, cfg.protected_units), unit
    assert unit_is_protected("getty@tty1.service", ("getty@.service",))
    replaced = parse_config({"protected_units": ["nginx.service"], "protected_units_replace": True}, env={})
    assert replaced.protected_units == ("nginx.service",)
    assert not unit_is_protected("sshd.service", replaced.protected_units)


@pytest.mark.parametrize(
    "unit",
    [
        "sshd.socket",
        "sshd@0-10.0.0.1:22-10.0.0.2:51000.service",
        "sshd@.service",
        "user@0.service",
        "dhcpcd.service",
        "firewall.service",
        "systemd-resolved.service",
        "systemd-journald@audit.service",
        "systemd-journald@.service",
        "systemd-journald.socket",
        "systemd-journald-dev-log.socket",
        "systemd-journald-varlink@audit.socket",
        "systemd-journald@audit.socket",
    ],
)
def test_nixos_reachability_units_are_protected_by_default(unit: str) -> None:
    from ai_sysadmin.actions.policy import is_protected

    cfg = parse_config({"protected_units": ["nginx.service"]}, env={})
    assert is_protected(unit, cfg.protected_units, cfg.actions.protected_patterns), unit
    for other in ("user@1000.service", "sshd-keygen.service", "dhcpcd-hook.service", "resolvconf.service"):
        assert not is_protected(other, cfg.protected_units, cfg.actions.protected_patterns), other


@pytest.mark.parametrize("level", AUTONOMY_LEVELS)
def test_every_autonomy_level_is_accepted(level: str) -> None:
    assert parse_config({"autonomy_level": level}, env={}).autonomy_level == level


@pytest.mark.parametrize(
    ("data", "path", "reason"),
    [
        ({"autonomy_level": "yolo"}, "autonomy_level", "must be one of observe, suggest, auto-safe, auto-full"),
        ({"roles": {"trigger": {"url": "ftp://x"}}}, "roles.trigger.url", "not an http(s) URL"),
        ({"roles": {"trigger": {"url": "localhost:8080"}}}, "roles.trigger.url", "not an http(s) URL"),
        ({"roles": {"meta": {"url": "http://u:p@host"}}}, "roles.meta.url", "must not contain credentials"),
        ({"roles": {"review": {"timeout": 0}}}, "roles.review.timeout", "must be greater than 0"),
        ({"roles": {"review": {"timeout": "30"}}}, "roles.review.timeout", "must be a number, got a string"),
        ({"roles": {"review": {"max_tokens": 1.5}}}, "roles.review.max_tokens", "must be an integer"),
        ({"roles": {"review": {"enable": 1}}}, "roles.review.enable", "must be a boolean, got an integer"),
        ({"roles": {"trigger": {"model": "has space"}}}, "roles.trigger.model", "must be a model id"),
        ({"roles": []}, "roles", "must be an object, got a list"),
        ({"intervals": {"metrics": True}}, "intervals.metrics", "must be a number, got a boolean"),
        ({"intervals": {"review": -1}}, "intervals.review", "must be greater than 0"),
        ({"api": {"port": 70000}}, "api.port", "must be a TCP port between 1 and 65535"),
        ({"api": {"host": "0.0.0.0"}}, "api.api_key_file", "required when api.host (0.0.0.0) is not loopback"),
        ({"api": {"require_auth": True}}, "api.api_key_file", "required when api.require_auth is true"),
        ({"database": {"dsn": "postgresql://u:pw@db/x"}}, "database.dsn", "must not contain a password"),
        ({"database": {"dsn": "host=db password=pw"}}, "database.dsn", "must not contain a password"),
        (
            {"database": {"dsn": "postgresql://db/x?sslmode=require&password=pw"}},
            "database.dsn",
            "must not contain a password",
        ),
        ({"database": {"dsn": "postgresql:///x?PASSWORD=pw"}}, "database.dsn", "must not contain a password"),
        ({"journal": {"cursor_file": "/var/lib/x/cursor"}}, "journal.cursor_file", "no longer used"),
        ({"protected_units_replace": True}, "protected_units_replace", "would protect nothing"),
        ({"protected_units": ["llama-*"]}, "protected_units[0]", "not a systemd unit name or glob"),
        ({"database": {"socket_dir": "run/pg"}}, "database.socket_dir", "must be an absolute path"),
        ({"journal": {"source": "file"}}, "journal.path", "required when journal.source is 'file'"),
        ({"journal": {"source": "syslog"}}, "journal.source", "must be one of system, directory, file"),
        ({"knowledge": {"path": "/k", "url": "http://h:8000"}}, "knowledge.url", "not both"),
        ({"protected_units": "sshd.service"}, "protected_units", "must be a list, got a string"),
        ({"protected_units": ["sshd"]}, "protected_units[0]", "not a systemd unit name"),
        ({"state_dir": "relative/dir"}, "state_dir", "must be an absolute path"),
        ({"autonomy": "observe"}, "autonomy", "unknown key (did you mean 'autonomy_level'?)"),
        ({"roles": {"trigger": {"timout": 3}}}, "roles.trigger.timout", "unknown key (did you mean 'timeout'?)"),
        ({"roles": {"judge": {}}}, "roles.judge", "unknown key"),
        ([], "(document)", "must be an object, got a list"),
    ],
)
def test_each_invalid_kind_names_its_key(data: object, path: str, reason: str) -> None:
    found = problems(data)
    assert path in found, found
    assert reason in found[path]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "autonomy_level": "yolo",
            "roles": {"trigger": {"url": "nope", "timeout": -1}, "meta": {"extra": 1}},
            "api": {"port": 0},
            "typo": 1,
        }
    )
    assert set(found) == {
        "autonomy_level",
        "roles.trigger.url",
        "roles.trigger.timeout",
        "roles.meta.extra",
        "api.port",
        "typo",
    }


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text('{\n  "autonomy_level": "observe",\n  oops\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config(f, env={})
    assert "line 3 column 3" in str(info.value)
    assert str(f) in str(info.value)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.json", env={})


def test_config_path_from_environment(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"autonomy_level": "observe", "state_dir": str(tmp_path)}))
    assert load_config(None, env={"AI_SYSADMIN_CONFIG": str(f)}).autonomy_level == "observe"
    assert load_config(None, env={"HOME": str(tmp_path)}).autonomy_level == "suggest"


# ------------------------------------------------------------------------ secrets


def test_secret_from_file_is_read_and_never_printed(tmp_path: Path) -> None:
    key = tmp_path / "api.key"
    key.write_text("hunter2-very-secret\n")
    cfg = parse_config({"api": {"host": "0.0.0.0", "api_key_file": str(key)}}, env={})
    assert cfg.api.api_key is not None and cfg.api.api_key.reveal() == "hunter2-very-secret"
    assert cfg.api.require_auth is True
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg)


def test_bare_credential_name_resolves_in_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "api-key").write_text("from-systemd")
    (tmp_path / "db-pass").write_text("pg-pass")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    cfg = parse_config({"api": {"api_key_file": "api-key"}, "database": {"password_file": "db-pass"}}, env=env)
    assert cfg.api.api_key.reveal() == "from-systemd"  # type: ignore[union-attr]
    assert cfg.api.require_auth is True  # a configured key is always enforced
    assert cfg.database.password.reveal() == "pg-pass"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "env_dir", "reason"),
    [
        ("api-key", False, "needs $CREDENTIALS_DIRECTORY"),
        ("missing", True, "does not exist"),
        ("empty", True, "is empty"),
        ("relative/path", True, "must be an absolute path or a bare systemd credential name"),
        ("bad name!", True, "not a valid systemd credential name"),
        ("adir", True, "cannot read"),
    ],
)
def test_secret_problems_name_the_key(tmp_path: Path, value: str, env_dir: bool, reason: str) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "adir").mkdir()
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)} if env_dir else {}
    found = problems({"roles": {"meta": {"api_key_file": value}}}, env=env)
    assert reason in found["roles.meta.api_key_file"]


def without_root_file_access() -> list[str]:
    """argv prefix: root minus the capabilities that let it read any file (a plain user needs none)."""
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def test_unreadable_secret_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "k"
    f.write_text("x")
    f.chmod(0)
    (tmp_path / "c.json").write_text(json.dumps({"api": {"api_key_file": str(f)}}))
    r = subprocess.run(
        [
            *without_root_file_access(),
            sys.executable,
            "-m",
            "ai_sysadmin",
            "--config",
            str(tmp_path / "c.json"),
            "config",
            "check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "api.api_key_file: file" in r.stderr and "is not readable by this user" in r.stderr


# ------------------------------------------------------------------------ CLI


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_cli_rejects_bad_config_before_starting_anything(tmp_path: Path) -> None:
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"autonomy_level": "yolo", "roles": {"trigger": {"url": "x"}}}))
    r = run_cli("--config", str(f), "doctor")
    assert r.returncode == 2
    assert "autonomy_level: must be one of observe, suggest, auto-safe, auto-full" in r.stderr
    assert "roles.trigger.url: not an http(s) URL" in r.stderr
    assert r.stdout == ""  # no check ran


def test_cli_config_show_masks_secrets(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("topsecretvalue")
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"state_dir": str(tmp_path), "api": {"api_key_file": str(key)}}))
    r = run_cli("--config", str(f), "config", "show")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["api"]["api_key"] == "<secret>"
    assert "topsecretvalue" not in r.stdout


# ------------------------------------------------------------------ fleet


def test_fleet_defaults_to_a_standalone_host_named_like_the_machine() -> None:
    import socket

    cfg = parse_config({}, env={})
    assert cfg.fleet.role == "standalone" and cfg.fleet.host is None
    assert cfg.fleet.host_id() == socket.gethostname()
    assert parse_config({"fleet": {"host": "web-1"}}, env={}).fleet.host_id() == "web-1"


def test_fleet_member_keys_are_read_as_written_and_the_password_only_when_used() -> None:
    # The credential does not exist here: naming it must not fail at load (read when used).
    cfg = parse_config(
        {
            "fleet": {
                "role": "member",
                "host": "web-1",
                "hub_url": "https://hub:19532",
                "hub_dsn": "postgresql://m@hub/ai?sslmode=verify-full",
                "hub_password_file": "fleet-db-password",
            }
        },
        env={},
    )
    assert cfg.fleet.hub_url == "https://hub:19532" and cfg.fleet.hub_password_file == "fleet-db-password"
    hub = parse_config({"fleet": {"role": "hub", "journal_dir": "/var/log/journal/remote/"}}, env={})
    assert hub.fleet.journal_dir == "/var/log/journal/remote/"


def test_fleet_members_map_senders_to_host_ids_on_a_hub_only() -> None:
    members = {"10.213.0.2": "web-1", "fd00::3": "db-1", "::ffff:10.213.0.4": "web-2", "CN=mail": "mail"}
    cfg = parse_config({"fleet": {"role": "hub", "host": "hub", "members": members}}, env={})
    assert cfg.fleet.members == members
    assert parse_config({}, env={}).fleet.members == {}
    # An empty map is no setting: a member's rendered config may carry it.
    member = {"role": "member", "hub_url": "https://hub", "members": {}}
    assert parse_config({"fleet": member}, env={}).fleet.members == {}


@pytest.mark.parametrize(
    "fleet, path, reason",
    [
        ({"role": "member"}, "fleet.hub_url", "required when fleet.role is 'member'"),
        (
            {"role": "hub", "hub_url": "https://hub"},
            "fleet.hub_url",
            "only used when fleet.role is 'member' (it is 'hub')",
        ),
        ({"journal_dir": "/srv/j"}, "fleet.journal_dir", "only used when fleet.role is 'hub' (it is 'standalone')"),
        ({"role": "cluster"}, "fleet.role", "must be one of standalone, hub, member"),
        ({"host": "web 1"}, "fleet.host", "must be a host id"),
        (
            {"role": "member", "hub_url": "https://hub", "hub_dsn": "postgresql://m:pw@hub/ai"},
            "fleet.hub_dsn",
            "must not contain a password",
        ),
        ({"role": "member", "hub_url": "ftp://hub"}, "fleet.hub_url", "not an http(s) URL"),
        (
            {"role": "member", "hub_url": "https://hub", "members": {"10.0.0.2": "web-1"}},
            "fleet.members",
            "only used when fleet.role is 'hub' (it is 'member')",
        ),
        (
            {"role": "hub", "members": {"10.213.0.2": "web-1", "10.213.0.3": "web-1"}},
            "fleet.members.10.213.0.3",
            "host id 'web-1' is already the host of sender '10.213.0.2': one sender per host",
        ),
        ({"role": "hub", "host": "hub", "members": {"10.0.0.2": "hub"}}, "fleet.members.10.0.0.2", "hub's own"),
        ({"role": "hub", "members": {"10.0.0.2": "web 1"}}, "fleet.members.10.0.0.2", "must be a host id"),
        ({"role": "hub", "members": {"FD00::2": "web-1"}}, "fleet.members.FD00::2.[key]", "names the file: fd00::2"),
        ({"role": "hub", "members": {"": "web-1"}}, "fleet.members..[key]", "must be a sender name"),
        ({"role": "hub", "members": {"a\nb": "web-1"}}, "fleet.members.a\nb.[key]", "must be a sender name"),
    ],
)
def test_fleet_problems_name_their_key(fleet: dict, path: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"fleet": fleet}, env={})
    assert any(i.path == path and reason in i.reason for i in exc.value.issues), exc.value.issues
