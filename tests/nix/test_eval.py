"""Render module.nix for many option sets (nixpkgs STAND-IN) and check the units and config."""

from __future__ import annotations

import json
import re
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
    name, out = case
    assert out["assertions"] == [], out["assertions"]
    assert out["warnings"] == []


def test_config_json_loads_with_the_python_loader(case: tuple[str, dict[str, Any]], tmp_path: Any) -> None:
    name, out = case
    creds = tmp_path / "creds"
    creds.mkdir()
    for cred in ("api-key", "db-password"):
        (creds / cred).write_text("not-a-real-secret\n")
    cfg = parse_config(out["settings"], env={"CREDENTIALS_DIRECTORY": str(creds)}, source=name)
    svc = CASES[name]["services"]["ai-sysadmin"]
    assert cfg.autonomy_level == svc.get("autonomyLevel", "suggest")
    llama = svc.get("llamacpp", {})
    for role, port in LLAMA.items():
        rc = getattr(cfg.roles, role)
        enabled = llama.get("enable", True) and llama.get(role, {}).get("enable", True)
        assert rc.enable == enabled
        assert rc.url == f"http://127.0.0.1:{port}"
        assert rc.model == role
    assert cfg.api.port == 40083


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
        exec_start = one(u, "ExecStart") or ""
        assert exec_start.split()[0].endswith("/bin/llama-server")
        assert f"--host 127.0.0.1 --port {port} " in exec_start
        assert f"--model {MODEL}" in exec_start and f"--alias {role}" in exec_start
        assert one(u, "Restart") == "always"
        assert one(u, "DynamicUser") == "true"
        assert one(u, "StateDirectory") == f"llama-{role}" and one(u, "CacheDirectory") == f"llama-{role}"
        for key, want in {"ProtectSystem": "strict", "ProtectHome": "true", "NoNewPrivileges": "true",
                          "CapabilityBoundingSet": "", "DevicePolicy": "closed", "RestrictNamespaces": "true",
                          "SystemCallArchitectures": "native", "IPAddressDeny": "any",
                          "IPAddressAllow": "localhost", "ProtectKernelTunables": "true"}.items():
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
            assert allow == {
                "cuda": {"char-nvidiactl", "char-nvidia-caps", "char-nvidia-frontend", "char-nvidia-uvm"},
                "rocm": {"char-drm", "char-fb", "char-kfd"},
                "vulkan": {"char-drm", "char-fb"},
            }[accel]
            groups = set(u.get("SupplementaryGroups", []))
            assert groups == (set() if accel == "cuda" else {"render", "video"})
            assert f"llama-cpp-{accel}Support-stand-in" in exec_start  # the overridden variant


def test_orchestrator_unit(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    svc = CASES[name]["services"]["ai-sysadmin"]
    u = unit_lines(out["units"]["ai-sysadmin.service"])
    assert (one(u, "ExecStart") or "").endswith("/bin/ai-sysadmin run")
    llama = svc.get("llamacpp", {})
    expected = [f"llama-{r}.service" for r in ("trigger", "review", "meta", "embed")
                if llama.get("enable", True) and llama.get(r, {}).get("enable", r != "embed")]
    local_db = svc.get("database", {}).get("createLocally", True)
    if local_db:
        expected.append("postgresql.service")
    if svc.get("knowledgeBase", {}).get("backend") == "chromadb":
        expected.append("chromadb.service")
    assert (one(u, "Requires") or "").split() == expected
    assert set(expected) <= set((one(u, "After") or "").split())
    assert u["SupplementaryGroups"] == ["systemd-journal"]
    assert one(u, "DynamicUser") == "true" and one(u, "CapabilityBoundingSet") == ""
    assert one(u, "StateDirectory") == "ai-sysadmin"
    assert "AmbientCapabilities" in u and one(u, "AmbientCapabilities") == ""
    assert not any("sudo" in line or "polkit" in line for line in out["units"]["ai-sysadmin.service"].splitlines())
    env = one(u, "Environment") or ""
    assert env.startswith('"AI_SYSADMIN_CONFIG=/nix/store/') and env.endswith('-ai-sysadmin.json"')


def test_api_unit_and_firewall(case: tuple[str, dict[str, Any]]) -> None:
    name, out = case
    api = CASES[name]["services"]["ai-sysadmin"].get("api", {})
    if not api.get("enable"):
        assert "ai-sysadmin-api.service" not in out["units"]
        assert out["firewall"]["tcp"] == []
        return
    u = unit_lines(out["units"]["ai-sysadmin-api.service"])
    assert (one(u, "ExecStart") or "").endswith("/bin/ai-sysadmin api")
    meta_on = CASES[name]["services"]["ai-sysadmin"]["llamacpp"].get("meta", {}).get("enable", True)
    assert ("llama-meta.service" in (one(u, "Requires") or "")) == meta_on
    assert ("llama-meta.service" in (one(u, "After") or "")) == meta_on
    if api.get("apiKeyFile"):
        assert u["LoadCredential"] == [f"api-key:{api['apiKeyFile']}"]
        assert out["settings"]["api"]["api_key_file"] == "api-key"
        assert "IPAddressDeny" not in u
    else:
        assert "LoadCredential" not in u
        assert one(u, "IPAddressAllow") == "localhost"
    assert out["firewall"]["tcp"] == ([40083] if api.get("openFirewall") else [])


def test_no_secret_in_rendered_files(case: tuple[str, dict[str, Any]]) -> None:
    """Secrets are files that systemd reads; their paths appear only in LoadCredential=."""
    name, out = case
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
        assert pg["ensureUsers"] == [{"name": "ai-sysadmin", "ensureDBOwnership": True}]
        assert pg["extensions"] == ["timescaledb-stand-in"]
        assert pg["sharedPreloadLibraries"] == "timescaledb"
        assert out["settings"]["database"] == {"socket_dir": "/run/postgresql", "name": "ai-sysadmin", "user": "ai-sysadmin"}
    else:
        assert out["settings"]["database"]["password_file"] == "db-password"


# ---------------------------------------------------------------- single-case checks

def test_host_postgresql_choices_are_kept(nix_instantiate: str) -> None:
    cfg = base()
    cfg["services"]["postgresql"] = {"package": {"__package": "/nix/store/x-postgresql-16", "name": "postgresql-16"},
                                     "settings": {"shared_preload_libraries": "pg_stat_statements"},
                                     "authentication": "host all all 10.0.0.0/8 scram-sha-256"}
    pg = render(cfg)["postgresql"]
    assert pg["packageName"] == "postgresql-16"
    assert pg["authentication"] == "host all all 10.0.0.0/8 scram-sha-256"
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


@pytest.mark.parametrize("svc, message", [
    ({"api": {"enable": True, "host": "0.0.0.0"}}, "api.host (0.0.0.0) is not a loopback address"),
    ({"llamacpp": {"meta": {"model": None}}}, "llamacpp.meta.model must be set"),
    ({"llamacpp": {"review": {"host": "0.0.0.0"}}}, "llamacpp.review.host must be a loopback address"),
    ({"database": {"createLocally": False}}, "set createLocally = true or a database.url"),
    ({"api": {"apiKeyFile": "/nix/store/abc-key"}}, "must be an absolute path outside the Nix store"),
])
def test_assertions(nix_instantiate: str, svc: dict[str, Any], message: str) -> None:
    failed = render(base(**svc))["assertions"]
    assert any(message in m for m in failed), failed


@pytest.mark.parametrize("old, value, message", [
    ("ollamaHost", "http://127.0.0.1:11434", "llamacpp.{trigger,review,meta}.model"),
    ("triggerModel", "qwen2.5:1.5b", "services.ai-sysadmin.llamacpp.trigger.model"),
    ("metaModel", "qwen2.5:14b", "services.ai-sysadmin.llamacpp.meta.model"),
    ("ollamaModels", ["qwen2.5:7b"], "llamacpp.<role>.model"),
])
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
