"""Render module.nix for many option sets (nixpkgs STAND-IN) and check the units and config."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest

from ai_sysadmin.config import ConfigError, parse_config
from tests.nix.cases import CASES, DB_SECRET_PATH, MODEL, SECRET_PATH, base
from tests.nix.nixtools import EvalError, render

LLAMA = {"trigger": 40080, "review": 40081, "meta": 40082}


def unit_lines(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("["):
            k, v = line.split("=", 1)
            out.setdefault(k, []).append(v)
    return out


def one(unit: dict[str, list[str]], key: str) -> str | None:
    v = unit.get(key)
    return v[-1] if v else None


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest, nix_instantiate: str) -> tuple[str, dict[str, Any]]:
    return request.param, render(CASES[request.param])


def test_renders_without_failed_assertions(case: tuple[str, dict[str, Any]]) -> None:
    _name, out = case
    assert out["assertions"] == [], out["assertions"]
    assert out["warnings"] == []


PARTS = {
    "orchestrator": "ai-sysadmin.service",
    "api": "ai-sysadmin-api.service",
    "executor": "ai-sysadmin-executor.service",
}


def named_credentials(doc: Any) -> set[str]:
    """Every bare systemd credential name a rendered configuration refers to (`*_file` keys)."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k.endswith("_file") and isinstance(v, str) and "/" not in v:
                out.add(v)
            else:
                out |= named_credentials(v)
    return out


def test_each_unit_gets_exactly_the_credentials_its_config_names(
    case: tuple[str, dict[str, Any]], tmp_path: Any
) -> None:
    """A unit's LoadCredential= names == the credentials its own rendered file names, and the
    Python loader accepts that file with a $CREDENTIALS_DIRECTORY holding exactly those."""
    name, out = case
    svc = CASES[name]["services"]["ai-sysadmin"]
    for part, unit in PARTS.items():
        if unit not in out["units"]:
            assert part == "api" and not svc.get("api", {}).get("enable")
            continue
        u = unit_lines(out["units"][unit])
        rendered = out["unitConfigs"][part]
        env = dict(e.strip('"').split("=", 1) for e in u["Environment"])
        assert env["AI_SYSADMIN_CONFIG"] == rendered["path"]
        with open(rendered["path"]) as f:  # the file the unit reads is the one checked here
            assert json.load(f) == rendered["content"]
        loaded = {c.split(":", 1)[0] for c in u.get("LoadCredential", [])}
        assert loaded == named_credentials(rendered["content"]), (unit, loaded)
        creds = tmp_path / part
        creds.mkdir()
        for cred in loaded:
            (creds / cred).write_text("k1:not-a-real-secret\n" if cred == "api-key" else "not-a-real-secret\n")
        cfg = parse_config(rendered["content"], env={"CREDENTIALS_DIRECTORY": str(creds)}, source=f"{name}/{part}")
        assert cfg.autonomy_level == svc.get("autonomyLevel", "suggest")
        llama = svc.get("llamacpp", {})
        for role, port in LLAMA.items():
            rc = getattr(cfg.roles, role)
            enabled = llama.get("enable", True) and llama.get(role, {}).get("enable", True)
            assert rc.enable == enabled
            assert rc.url == f"http://127.0.0.1:{port}"
            assert rc.model == role
        local = svc.get("database", {}).get("createLocally", True)
        if local:
            assert (
                cfg.database.user
                == {"orchestrator": "ai-sysadmin", "api": "ai-sysadmin-api", "executor": "ai-sysadmin-executor"}[part]
            )
        # The approval key: the executor and the API get it; the orchestrator never does.
        key = cfg.actions.approval_key_file
        assert (key == "approval-key") == (part != "orchestrator") and (key is None) == (part == "orchestrator")
        assert ("api-key" in loaded) == (part == "api" and bool(svc.get("api", {}).get("apiKeyFile")))


def test_orchestrator_config_names_the_other_roles(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    db = out["unitConfigs"]["orchestrator"]["content"]["database"]
    if CASES[name]["services"]["ai-sysadmin"].get("database", {}).get("createLocally", True):
        assert (db["executor_role"], db["api_role"]) == ("ai-sysadmin-executor", "ai-sysadmin-api")
    else:
        assert "executor_role" not in db and "api_role" not in db


def test_admin_command(case: tuple[str, dict[str, Any]]) -> None:
    """`ai-sysadmin` on the host runs the package with the admin configuration; secrets
    there are root-only paths, never credentials (an admin shell has none)."""
    name, out = case
    (script,) = [b for b in out["binScripts"] if b["name"] == "ai-sysadmin"]
    admin = out["unitConfigs"]["admin"]
    assert admin["path"] in script["text"] and '"$@"' in script["text"]
    assert script["text"].rstrip().endswith('/bin/ai-sysadmin "$@"')
    assert named_credentials(admin["content"]) == set()
    assert admin["content"]["actions"]["approval_key_file"] == "/var/lib/ai-sysadmin-executor/approval-key"
    svc = CASES[name]["services"]["ai-sysadmin"]
    if svc.get("database", {}).get("createLocally", True):
        assert admin["content"]["database"]["user"] == "ai-sysadmin-api"
    else:
        assert admin["content"]["database"].get("password_file") in (None, DB_SECRET_PATH)
    cfg = (
        parse_config(admin["content"], env={}, source=f"{name}/admin")
        if "password_file" not in admin["content"]["database"]
        else None
    )
    if cfg is not None:
        assert cfg.actions.approval_key_file == "/var/lib/ai-sysadmin-executor/approval-key"


def test_context_size_is_per_slot(case: tuple[str, dict[str, Any]]) -> None:
    _name, out = case
    for role, total, parallel in (("trigger", 4096, 2), ("review", 8192, 1), ("meta", 16384, 1)):
        assert out["settings"]["roles"][role]["context_size"] == total // parallel
        if role in out["units"]:
            pass
    u = unit_lines(out["units"]["llama-trigger.service"]) if "llama-trigger.service" in out["units"] else None
    if u:
        assert " ".join(shlex.split(one(u, "ExecStart") or "")).count("--ctx-size 4096 --parallel 2 ") == 1


def test_llama_units(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    svc = CASES[name]["services"]["ai-sysadmin"]
    llama = svc.get("llamacpp", {})
    accel = llama.get("acceleration")
    for role, port in LLAMA.items():
        enabled = llama.get("enable", True) and llama.get(role, {}).get("enable", True)
        unit_name = f"llama-{role}.service"
        if not enabled:
            assert unit_name not in out["units"]
            continue
        u = unit_lines(out["units"][unit_name])
        # nixos/lib/utils.nix quotes every argument ("--port" "40080"): compare the argv.
        exec_start = " ".join(shlex.split(one(u, "ExecStart") or ""))
        assert exec_start.split()[0].endswith("/bin/llama-server")
        assert '"--host" "127.0.0.1"' in (one(u, "ExecStart") or "")
        assert f"--host 127.0.0.1 --port {port} " in exec_start
        assert f"--model {MODEL}" in exec_start and f"--alias {role}" in exec_start
        assert one(u, "Restart") == "always"
        assert one(u, "DynamicUser") == "true"
        assert one(u, "StateDirectory") == f"llama-{role}" and one(u, "CacheDirectory") == f"llama-{role}"
        for key, want in {
            "ProtectSystem": "strict",
            "ProtectHome": "true",
            "NoNewPrivileges": "true",
            "CapabilityBoundingSet": "",
            "DevicePolicy": "closed",
            "RestrictNamespaces": "true",
            "SystemCallArchitectures": "native",
            "IPAddressDeny": "any",
            "IPAddressAllow": "localhost",
            "ProtectKernelTunables": "true",
        }.items():
            assert one(u, key) == want, (unit_name, key, u.get(key))
        assert "@system-service" in u["SystemCallFilter"]
        gpu = accel in ("cuda", "rocm", "vulkan")
        layers = re.search(r"--n-gpu-layers (\d+)", exec_start)
        assert layers and int(layers.group(1)) == (999 if gpu else 0)
        if not gpu:
            assert one(u, "PrivateDevices") == "true" and "DeviceAllow" not in u
            assert one(u, "MemoryDenyWriteExecute") == "true"
            assert "stand-in/bin" in exec_start or "llama-cpp-stand-in" in exec_start
        else:
            assert one(u, "PrivateDevices") == "false"
            allow = {d.split()[0] for d in u["DeviceAllow"]}
            assert (
                allow
                == {
                    "cuda": {"char-nvidiactl", "char-nvidia-caps", "char-nvidia-frontend", "char-nvidia-uvm"},
                    "rocm": {"char-drm", "char-fb", "char-kfd"},
                    "vulkan": {"char-drm", "char-fb"},
                }[accel]
            )
            groups = set(u.get("SupplementaryGroups", []))
            assert groups == (set() if accel == "cuda" else {"render", "video"})
            assert f"llama-cpp-{accel}Support-stand-in" in exec_start  # the overridden variant


def test_orchestrator_unit(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    svc = CASES[name]["services"]["ai-sysadmin"]
    u = unit_lines(out["units"]["ai-sysadmin.service"])
    assert (one(u, "ExecStart") or "").endswith("/bin/ai-sysadmin run")
    llama = svc.get("llamacpp", {})
    expected = [
        f"llama-{r}.service"
        for r in ("trigger", "review", "meta", "embed")
        if llama.get("enable", True) and llama.get(r, {}).get("enable", r != "embed")
    ]
    local_db = svc.get("database", {}).get("createLocally", True)
    if local_db:
        expected.append("postgresql.service")
    if svc.get("knowledgeBase", {}).get("backend") == "chromadb":
        expected.append("chromadb.service")
    if local_db:
        expected.append("postgresql.target")  # reached once postgresql-setup made the roles
    # wants + after, never requires: a stopped model server or database leaves the
    # orchestrator running (degraded, spooling).
    assert "Requires" not in u and "BindsTo" not in u
    assert set((one(u, "Wants") or "").split()) == set(expected)
    assert set(expected) <= set((one(u, "After") or "").split())
    assert one(u, "ProtectProc") == "default" and one(u, "ProtectHome") == "read-only"
    assert "ProcSubset" not in u
    # A hub also reads the members' files that systemd-journal-remote writes (group of its user).
    hub = svc.get("fleet", {}).get("role") == "hub"
    assert u["SupplementaryGroups"] == ["systemd-journal"] + (["systemd-journal-remote"] if hub else [])
    # A static user: dbus-daemon refuses dynamic users (unit states come over D-Bus).
    assert one(u, "DynamicUser") == "false" and one(u, "User") == "ai-sysadmin"
    assert out["users"]["ai-sysadmin"] == {"group": "ai-sysadmin", "isSystemUser": True}
    assert one(u, "CapabilityBoundingSet") == "" and one(u, "NoNewPrivileges") == "true"
    for key, want in {
        "ProtectSystem": "strict",
        "PrivateTmp": "true",
        "RemoveIPC": "true",
        "RestrictSUIDSGID": "true",
    }.items():  # what DynamicUser= implied
        assert one(u, key) == want, key
    assert one(u, "StateDirectory") == "ai-sysadmin"
    assert "AmbientCapabilities" in u and one(u, "AmbientCapabilities") == ""
    assert not any("sudo" in line or "polkit" in line for line in out["units"]["ai-sysadmin.service"].splitlines())
    env = dict(e.strip('"').split("=", 1) for e in u["Environment"])
    assert env["AI_SYSADMIN_CONFIG"].startswith("/nix/store/")
    assert env["AI_SYSADMIN_CONFIG"].endswith("-ai-sysadmin-orchestrator.json")


def test_api_unit_and_firewall(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    api = CASES[name]["services"]["ai-sysadmin"].get("api", {})
    if not api.get("enable"):
        assert "ai-sysadmin-api.service" not in out["units"] and "ai-sysadmin-api" not in out["users"]
        assert out["firewall"]["tcp"] == []
        return
    u = unit_lines(out["units"]["ai-sysadmin-api.service"])
    assert (one(u, "ExecStart") or "").endswith("/bin/ai-sysadmin api")
    meta_on = CASES[name]["services"]["ai-sysadmin"]["llamacpp"].get("meta", {}).get("enable", True)
    assert ("llama-meta.service" in (one(u, "Wants") or "")) == meta_on
    assert ("llama-meta.service" in (one(u, "After") or "")) == meta_on
    assert (one(u, "Requires") or "").split() == ["ai-sysadmin-approval-key.service"]
    assert one(u, "User") == "ai-sysadmin-api"
    # Room for many connections: a flood of half-open ones must not exhaust 1,024 files.
    assert one(u, "LimitNOFILE") == "65536"
    # Its `ai-sysadmin` model investigates the host with the orchestrator's tools: the
    # same view (static user for D-Bus, journal group, every process, /home).
    assert one(u, "DynamicUser") == "false" and u["SupplementaryGroups"] == ["systemd-journal"]
    assert one(u, "ProtectProc") == "default" and one(u, "ProtectHome") == "read-only"
    assert "ProcSubset" not in u and one(u, "PrivateUsers") == "false"
    assert out["users"]["ai-sysadmin-api"] == {"group": "ai-sysadmin-api", "isSystemUser": True}
    creds = {c.split(":", 1)[0]: c.split(":", 1)[1] for c in u["LoadCredential"]}
    assert creds["approval-key"] == "/var/lib/ai-sysadmin-executor/approval-key"
    if api.get("apiKeyFile"):
        assert creds["api-key"] == api["apiKeyFile"]
        assert out["settings"]["api"]["api_key_file"] == "api-key"
        assert "IPAddressDeny" not in u
    else:
        assert "api-key" not in creds
        assert one(u, "IPAddressAllow") == "localhost"
    assert out["firewall"]["tcp"] == ([40083] if api.get("openFirewall") else [])


def test_no_secret_in_rendered_files(case: tuple[str, dict[str, Any]]) -> None:
    """Secrets are files that systemd reads; their paths appear only in LoadCredential=."""
    _name, out = case
    blob = json.dumps(out["settings"])
    for secret in (SECRET_PATH, DB_SECRET_PATH):
        assert secret not in blob
        for unit, text in out["units"].items():
            for line in text.splitlines():
                if secret in line:
                    assert line.startswith("LoadCredential="), (unit, line)
    db = out["settings"].get("database", {})
    assert all(k == "password_file" or "password" not in str(v) for k, v in db.items()), db


def test_postgresql_wiring(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    local = CASES[name]["services"]["ai-sysadmin"].get("database", {}).get("createLocally", True)
    pg = out["postgresql"]
    assert pg["enable"] == local
    if local:
        assert pg["ensureDatabases"] == ["ai-sysadmin"]
        assert pg["ensureUsers"] == [
            {"name": "ai-sysadmin", "ensureDBOwnership": True},
            {"name": "ai-sysadmin-executor", "ensureDBOwnership": False},
            {"name": "ai-sysadmin-api", "ensureDBOwnership": False},
        ]
        # The free build by default (Apache-2.0); the TSL build only on request.
        assert pg["extensions"] == ["timescaledb-apache"]
        assert pg["sharedPreloadLibraries"] == "timescaledb"
        assert out["settings"]["database"] == {
            "socket_dir": "/run/postgresql",
            "port": 5432,
            "name": "ai-sysadmin",
            "user": "ai-sysadmin",
        }
        # Our pg_hba lines sit between nixpkgs' "# Generated file" (mkBefore) and its
        # default rules (mkAfter); root maps to the executor's and the API's roles.
        hba = pg["authentication"].splitlines()
        assert hba[0] == "# Generated file; do not edit!"
        ours = hba.index("local ai-sysadmin ai-sysadmin-executor peer map=ai-sysadmin-executor")
        assert ours < hba.index("local all all              peer")
        assert "ai-sysadmin-executor root ai-sysadmin-executor" in pg["identMap"].splitlines()
        assert "ai-sysadmin-api root ai-sysadmin-api" in pg["identMap"].splitlines()
        with open(pg["hbaFile"]) as f:
            assert f.read() == pg["authentication"]
    else:
        assert out["settings"]["database"]["password_file"] == "db-password"


# ---------------------------------------------------------------- single-case checks


def test_host_postgresql_choices_are_kept(nix_instantiate: str) -> None:
    cfg = base()
    cfg["services"]["postgresql"] = {
        "package": {
            "__package": "/nix/store/x-postgresql-16",
            "name": "postgresql-16",
            "extensions": ["timescaledb-apache"],
        },
        "settings": {"shared_preload_libraries": "pg_stat_statements"},
        "authentication": "host all all 10.0.0.0/8 scram-sha-256",
    }
    pg = render(cfg)["postgresql"]
    assert pg["packageName"] == "postgresql-16"
    assert "host all all 10.0.0.0/8 scram-sha-256" in pg["authentication"].splitlines()
    assert set(pg["sharedPreloadLibraries"].split(",")) == {"timescaledb", "pg_stat_statements"}


def test_settings_override_and_freeform(nix_instantiate: str) -> None:
    cfg = base(settings={"log_level": "debug", "intervals": {"review": 600}, "roles": {"meta": {"timeout": 900}}})
    s = render(cfg)["settings"]
    assert s["log_level"] == "debug" and s["intervals"] == {"review": 600}
    assert s["roles"]["meta"]["timeout"] == 900 and s["roles"]["meta"]["url"] == "http://127.0.0.1:40082"
    parse_config(s, env={})


def test_unknown_settings_key_reaches_the_loader(nix_instantiate: str) -> None:
    s = render(base(settings={"intervalz": {"review": 1}}))["settings"]
    with pytest.raises(ConfigError) as exc:
        parse_config(s, env={})
    assert "intervalz" in str(exc.value)


@pytest.mark.parametrize(
    "svc, message",
    [
        ({"api": {"enable": True, "host": "0.0.0.0"}}, "api.host (0.0.0.0) is not a loopback address"),
        ({"llamacpp": {"meta": {"model": None}}}, "llamacpp.meta.model must be set"),
        ({"llamacpp": {"review": {"host": "0.0.0.0"}}}, "llamacpp.review.host must be a loopback address"),
        ({"database": {"createLocally": False}}, "set createLocally = true or a database.url"),
        ({"api": {"apiKeyFile": "/nix/store/abc-key"}}, "must be an absolute path outside the Nix store"),
        ({"actions": {"approvalKeyFile": "/nix/store/abc-key"}}, "actions.approvalKeyFile must be an absolute path"),
        ({"database": {"name": "aisys"}}, "database.name (aisys) must equal database.user (ai-sysadmin)"),
        (
            {"settings": {"actions": {"approval_key_file": "/k"}}},
            "set services.ai-sysadmin.actions.approvalKeyFile instead",
        ),
        ({"llamacpp": {"trigger": {"contextSize": 256, "parallel": 4}}}, "leaves under 128 tokens per slot"),
    ],
)
def test_assertions(nix_instantiate: str, svc: dict[str, Any], message: str) -> None:
    failed = render(base(**svc))["assertions"]
    assert any(message in m for m in failed), failed


@pytest.mark.parametrize(
    "old, value, message",
    [
        ("ollamaHost", "http://127.0.0.1:11434", "llamacpp.{trigger,review,meta}.model"),
        ("triggerModel", "qwen2.5:1.5b", "services.ai-sysadmin.llamacpp.trigger.model"),
        ("metaModel", "qwen2.5:14b", "services.ai-sysadmin.llamacpp.meta.model"),
        ("ollamaModels", ["qwen2.5:7b"], "llamacpp.<role>.model"),
    ],
)
def test_removed_ollama_options(nix_instantiate: str, old: str, value: Any, message: str) -> None:
    failed = render(base(**{old: value}))["assertions"]
    assert any(old in m and message in m for m in failed), failed


def test_renamed_ollama_acceleration(nix_instantiate: str) -> None:
    out = render(base(ollamaAcceleration="rocm"))
    assert any("ollamaAcceleration" in w and "llamacpp.acceleration" in w for w in out["warnings"])
    u = unit_lines(out["units"]["llama-trigger.service"])
    assert {d.split()[0] for d in u["DeviceAllow"]} == {"char-drm", "char-fb", "char-kfd"}


def test_unknown_option_is_an_error(nix_instantiate: str) -> None:
    with pytest.raises(EvalError, match=r"services.ai-sysadmin.llamacpp.trigger.modle' does not exist"):
        render(base(llamacpp={"trigger": {"modle": "/x"}}))


def test_bad_type_is_an_error(nix_instantiate: str) -> None:
    with pytest.raises(EvalError, match=r"autonomyLevel' is not of type"):
        render(base(autonomyLevel="yolo"))


def test_state_dir_is_read_only(nix_instantiate: str) -> None:
    """StateDirectory= is fixed, so settings.state_dir cannot point elsewhere."""
    with pytest.raises(EvalError, match=r"settings.state_dir' is read-only, but it's set multiple times"):
        render(base(settings={"state_dir": "/srv/ai"}))


def test_protected_units_add_to_the_defaults(nix_instantiate: str) -> None:
    out = render(base(protectedUnits=["nginx.service"]))
    assert out["settings"]["protected_units"] == ["nginx.service"]
    assert "protected_units" not in render(base())["settings"]
    with pytest.raises(EvalError, match=r"protectedUnits.*is not of type"):
        render(base(protectedUnits=["nginx; rm -rf /"]))


def test_role_url_off_host_opens_ip_for_that_address_only(nix_instantiate: str) -> None:
    """IPAddressAllow= follows the rendered settings, not only the typed options."""
    ip = render(base(settings={"roles": {"meta": {"url": "http://10.1.2.3:8080"}}}))
    u = unit_lines(ip["units"]["ai-sysadmin.service"])
    assert one(u, "IPAddressDeny") == "any" and u["IPAddressAllow"] == ["localhost", "10.1.2.3"]
    named = render(base(settings={"knowledge": {"url": "http://chroma.lan:8000"}}))
    u = unit_lines(named["units"]["ai-sysadmin.service"])
    assert "IPAddressDeny" not in u and "IPAddressAllow" not in u  # a name: the firewall's job
    remote = render(CASES["remote-db"])
    assert "IPAddressDeny" not in unit_lines(remote["units"]["ai-sysadmin.service"])


def test_executor_unit(nix_instantiate: str) -> None:
    out = render(base())
    u = unit_lines(out["units"]["ai-sysadmin-executor.service"])
    assert (one(u, "ExecStart") or "").endswith("/bin/ai-sysadmin executor")
    assert one(u, "User") == "root" and "DynamicUser" not in u
    assert one(u, "CapabilityBoundingSet") == "" and one(u, "NoNewPrivileges") == "true"
    assert one(u, "ProtectSystem") == "strict" and one(u, "ProtectHome") == "true"
    assert u["ReadWritePaths"] == ["-/nix/var/nix/profiles", "-/var/log/journal"]
    assert one(u, "PrivateNetwork") == "true" and u["RestrictAddressFamilies"] == ["AF_UNIX"]
    assert u["LoadCredential"] == ["approval-key:/var/lib/ai-sysadmin-executor/approval-key"]
    assert (one(u, "Requires") or "").split() == ["ai-sysadmin-approval-key.service"]
    assert "Requires" not in unit_lines(out["units"]["ai-sysadmin.service"])
    env = dict(e.strip('"').split("=", 1) for e in u["Environment"])
    assert env["NIX_REMOTE"] == "daemon" and "nix-stand-in/bin" in env["PATH"]
    key = unit_lines(out["units"]["ai-sysadmin-approval-key.service"])
    assert key["ConditionPathExists"] == ["!/var/lib/ai-sysadmin-executor/approval-key"]
    assert one(key, "Type") == "oneshot" and one(key, "PrivateNetwork") == "true"
    script = (one(key, "ExecStart") or "").split()[-1]
    with open(script) as f:
        text = f.read()
    assert "umask 077" in text and "/dev/urandom" in text and "echo" not in text
    # A key of one's own: no generator unit, the executor and API load that file.
    own = render(base(actions={"approvalKeyFile": "/run/keys/approval"}, api={"enable": True}))
    assert "ai-sysadmin-approval-key.service" not in own["units"]
    for unit in ("ai-sysadmin-executor.service", "ai-sysadmin-api.service"):
        lines = unit_lines(own["units"][unit])
        assert "approval-key:/run/keys/approval" in lines["LoadCredential"] and "Requires" not in lines
    assert own["unitConfigs"]["admin"]["content"]["actions"]["approval_key_file"] == "/run/keys/approval"


@pytest.mark.parametrize(
    "edition, ext", [("apache", "timescaledb-apache"), (True, "timescaledb-apache"), ("none", None), (False, None)]
)
def test_timescaledb_editions(nix_instantiate: str, edition: Any, ext: str | None) -> None:
    pg = render(base(database={"timescaledb": edition}))["postgresql"]
    assert pg["extensions"] == ([ext] if ext else [])
    assert pg["sharedPreloadLibraries"] == ("timescaledb" if ext else None)


def test_tsl_timescaledb_needs_allow_unfree(nix_instantiate: str) -> None:
    """The TSL build is unfree in nixpkgs: it refuses to evaluate unless allowed."""
    with pytest.raises(EvalError, match=r"timescaledb-stand-in.*has an unfree license \(‘TSL’\), refusing to evaluate"):
        render(base(database={"timescaledb": "tsl"}))
    cfg = base(database={"timescaledb": "tsl"})
    cfg["nixpkgs"] = {"config": {"allowUnfree": True}}
    assert render(cfg)["postgresql"]["extensions"] == ["timescaledb"]
