"""services.ai-sysadmin.fleet renders nixpkgs' services.journald.remote (hub) and
services.journald.upload (member), with the nixpkgs stand-in's lib and with the real
nixpkgs lib (they must agree), and refuses unsafe combinations with clear assertions.

The options are nixpkgs' nixos/modules/system/boot/systemd/journald-remote.nix and
journald-upload.nix (the stand-in's nix/stand-in/nixpkgs/nixos/modules/journald-*.nix
mirror their names, types and defaults; docs/nixos.md names the files).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import parse_config
from tests.nix.cases import FLEET_DB_SECRET_PATH, FLEET_DB_URL, FLEET_TLS, base
from tests.nix.nixtools import render
from tests.nix.test_eval import unit_lines
from tests.nix.test_stand_in import real_lib

HUB_URL = "https://hub.example.org:19532"


@pytest.fixture(params=["stand-in", "nixpkgs"])
def lib_path(request: pytest.FixtureRequest, nix_instantiate: str) -> str | None:
    return None if request.param == "stand-in" else str(real_lib())


def _ok(lib_path: str | None, **fleet: Any) -> dict[str, Any]:
    out = render(base(fleet=fleet), lib_path=lib_path)
    assert out["assertions"] == [], out["assertions"]
    return out


def _refused(lib_path: str | None, **fleet: Any) -> list[str]:
    out = render(base(fleet=fleet), lib_path=lib_path)
    assert out["assertions"], "expected a failed assertion"
    return out["assertions"]


def _ini(out: dict[str, Any], name: str) -> str:
    return Path(out["etc"][f"systemd/{name}"]["source"]).read_text()


def _member(**over: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "member", "hostId": "web-1", "tls": FLEET_TLS, "member": {"hubUrl": HUB_URL}}
    m.update(over)
    return m


# ------------------------------------------------------------------ standalone


def test_standalone_by_default_uses_neither(lib_path: str | None) -> None:
    out = _ok(lib_path)
    assert out["journald"]["remote"]["enable"] is False
    assert out["journald"]["upload"] == {"enable": False}
    assert not any(k.startswith("systemd/journal-") for k in out["etc"])
    assert out["unitConfigs"]["orchestrator"]["content"]["fleet"] == {"role": "standalone", "host": "nixos"}


def test_host_id_defaults_to_the_host_name(lib_path: str | None) -> None:
    out = render(base() | {"networking": {"hostName": "db-2"}}, lib_path=lib_path)
    assert out["unitConfigs"]["orchestrator"]["content"]["fleet"]["host"] == "db-2"


def test_an_empty_host_name_needs_a_host_id(lib_path: str | None) -> None:
    out = render(base() | {"networking": {"hostName": ""}}, lib_path=lib_path)
    assert any("fleet.hostId" in a and "networking.hostName" in a for a in out["assertions"]), out["assertions"]


# ------------------------------------------------------------------ hub


def test_hub_with_tls_configures_journal_remote(lib_path: str | None) -> None:
    out = _ok(lib_path, role="hub", tls=FLEET_TLS)
    remote = out["journald"]["remote"]
    assert remote["enable"] is True and remote["listen"] == "https" and remote["port"] == 19532
    assert remote["output"] == "/var/log/journal/remote/"
    assert remote["settings"]["Remote"] == {
        "Seal": False,
        "SplitMode": "host",
        "ServerKeyFile": FLEET_TLS["keyFile"],
        "ServerCertificateFile": FLEET_TLS["certFile"],
        "TrustedCertificateFile": FLEET_TLS["trustFile"],
    }
    conf = _ini(out, "journal-remote.conf")
    assert conf.startswith("[Remote]\n") and f"ServerKeyFile = {FLEET_TLS['keyFile']}\n" in conf
    assert "SplitMode = host\n" in conf
    # nixpkgs' ExecStart (cleared, then journal-remote on the socket's fd) and its socket.
    unit = out["units"]["systemd-journal-remote.service"]
    assert "ExecStart=\n" in unit and "--output=/var/log/journal/remote/ --listen-https=-3" in unit
    assert "ListenStream=\nListenStream=19532\n" in out["units"]["systemd-journal-remote.socket"]
    assert 19532 not in out["firewall"]["tcp"]
    fleet = out["unitConfigs"]["orchestrator"]["content"]["fleet"]
    assert fleet == {"role": "hub", "host": "nixos", "journal_dir": "/var/log/journal/remote/"}
    # The orchestrator reads the members' files: journal-remote's user's group.
    orchestrator = unit_lines(out["units"]["ai-sysadmin.service"])
    assert orchestrator["SupplementaryGroups"] == ["systemd-journal", "systemd-journal-remote"]


def test_hub_listen_address_port_directory_and_firewall(lib_path: str | None) -> None:
    out = _ok(
        lib_path,
        role="hub",
        tls=FLEET_TLS,
        hub={"listenAddress": "fd00::1", "port": 20000, "journalDirectory": "/srv/journals/", "openFirewall": True},
    )
    assert "ListenStream=\nListenStream=[fd00::1]:20000\n" in out["units"]["systemd-journal-remote.socket"]
    assert out["journald"]["remote"]["output"] == "/srv/journals/"
    assert "--output=/srv/journals/ --listen-https=-3" in out["units"]["systemd-journal-remote.service"]
    assert 20000 in out["firewall"]["tcp"]
    assert out["unitConfigs"]["orchestrator"]["content"]["fleet"]["journal_dir"] == "/srv/journals/"


def test_hub_without_tls_needs_a_named_private_network(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="hub")
    assert any('role = "hub"' in m and "fleet.tls.keyFile" in m and "fleet.privateNetwork" in m for m in msgs), msgs
    out = _ok(lib_path, role="hub", privateNetwork="10.42.0.0/24 backplane")
    assert out["journald"]["remote"]["listen"] == "http"
    assert "--listen-http=-3" in out["units"]["systemd-journal-remote.service"]


def test_hub_members_map_addresses_to_host_ids(lib_path: str | None) -> None:
    members = {"10.42.0.2": "web-1", "10.42.0.3": "db-1"}
    out = _ok(lib_path, role="hub", privateNetwork="10.42.0.0/24", hub={"members": members})
    configs = {p: c["content"]["fleet"] for p, c in out["unitConfigs"].items()}
    assert configs["orchestrator"]["members"] == members
    # The Python loader accepts it as rendered, and reads the map the hub's L1 uses.
    cfg = parse_config(
        json.loads(Path(out["unitConfigs"]["orchestrator"]["path"]).read_text()),
        env={"STATE_DIRECTORY": "/var/lib/ai-sysadmin"},
    )
    assert cfg.fleet.members == members


def test_hub_members_one_sender_per_host_and_only_on_a_hub(lib_path: str | None) -> None:
    msgs = _refused(
        lib_path, role="hub", privateNetwork="lab", hub={"members": {"10.42.0.2": "web-1", "10.42.0.3": "web-1"}}
    )
    assert any("fleet.hub.members maps two senders to one host id" in m for m in msgs), msgs
    msgs = _refused(lib_path, **_member(hub={"members": {"10.42.0.2": "web-1"}}))
    assert any('fleet.hub.members is only used with fleet.role = "hub" (it is "member")' in m for m in msgs), msgs


def test_partial_tls_is_refused(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="hub", privateNetwork="lab", tls={"keyFile": FLEET_TLS["keyFile"]})
    assert any("keyFile, certFile and trustFile together" in m for m in msgs), msgs


@pytest.mark.parametrize("key", ["/nix/store/00000000000000000000000000000000-key.pem", "relative/key.pem"])
def test_tls_key_must_stay_out_of_the_store(lib_path: str | None, key: str) -> None:
    msgs = _refused(lib_path, role="hub", tls=FLEET_TLS | {"keyFile": key})
    assert any("fleet.tls.keyFile must be an absolute path outside the Nix store" in m for m in msgs), msgs


# ------------------------------------------------------------------ member


def test_member_with_tls_configures_journal_upload(lib_path: str | None) -> None:
    out = _ok(lib_path, **_member())
    upload = out["journald"]["upload"]
    assert upload["enable"] is True
    assert upload["settings"]["Upload"] == {
        "URL": HUB_URL,
        "ServerKeyFile": FLEET_TLS["keyFile"],
        "ServerCertificateFile": FLEET_TLS["certFile"],
        "TrustedCertificateFile": FLEET_TLS["trustFile"],
        "NetworkTimeoutSec": None,
    }
    conf = _ini(out, "journal-upload.conf")
    assert conf.startswith("[Upload]\n") and f"URL = {HUB_URL}\n" in conf and "# NetworkTimeoutSec is unset\n" in conf
    unit = out["units"]["systemd-journal-upload.service"]
    assert "Restart=always\n" in unit and "RestartSec=3sec\n" in unit and "WantedBy=multi-user.target" in unit
    assert out["journald"]["remote"]["enable"] is False
    fleet = out["unitConfigs"]["orchestrator"]["content"]["fleet"]
    assert fleet == {"role": "member", "host": "web-1", "hub_url": HUB_URL}


def test_member_database_password_is_the_orchestrators_and_executors_credential(lib_path: str | None) -> None:
    out = _ok(
        lib_path,
        **_member(member={"hubUrl": HUB_URL, "database": {"url": FLEET_DB_URL, "passwordFile": FLEET_DB_SECRET_PATH}}),
    )
    configs = {p: c["content"]["fleet"] for p, c in out["unitConfigs"].items()}
    assert configs["orchestrator"]["hub_dsn"] == FLEET_DB_URL
    # The collector (orchestrator) and the member's executor write to the hub as the member.
    for part in ("orchestrator", "executor"):
        assert configs[part]["hub_dsn"] == FLEET_DB_URL
        assert configs[part]["hub_password_file"] == "fleet-db-password"
    assert configs["admin"]["hub_password_file"] == FLEET_DB_SECRET_PATH
    assert "hub_password_file" not in configs["api"]
    for unit in ("ai-sysadmin.service", "ai-sysadmin-executor.service"):
        assert f"LoadCredential=fleet-db-password:{FLEET_DB_SECRET_PATH}\n" in out["units"][unit]
    # The member's executor reaches the hub over IP, even with a local database of its own.
    executor = out["units"]["ai-sysadmin-executor.service"]
    assert "PrivateNetwork=true" not in executor and "AF_INET" in executor
    # The Python loader accepts the orchestrator's file as rendered (the key is read when used).
    parse_config(
        json.loads(Path(out["unitConfigs"]["orchestrator"]["path"]).read_text()),
        env={"STATE_DIRECTORY": "/var/lib/ai-sysadmin"},
    )


def test_member_without_hub_url_is_refused(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="member", tls=FLEET_TLS)
    assert any('role = "member"' in m and "fleet.member.hubUrl" in m for m in msgs), msgs


def test_member_https_needs_tls(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="member", member={"hubUrl": HUB_URL})
    assert any("is https://: set fleet.tls.keyFile" in m for m in msgs), msgs


def test_member_plain_http_needs_a_named_private_network(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="member", member={"hubUrl": "http://10.42.0.1:19532"})
    assert any("plain http://" in m and "fleet.privateNetwork" in m for m in msgs), msgs
    out = _ok(lib_path, role="member", privateNetwork="10.42.0.0/24", member={"hubUrl": "http://10.42.0.1:19532"})
    upload = out["journald"]["upload"]["settings"]["Upload"]
    assert upload["URL"] == "http://10.42.0.1:19532" and upload["ServerKeyFile"] is None
    assert "# ServerKeyFile is unset\n" in _ini(out, "journal-upload.conf")


def test_member_database_without_certificate_check_is_refused(lib_path: str | None) -> None:
    url = "postgresql://ai_sysadmin_member_web-1@hub.example.org/ai-sysadmin"
    msgs = _refused(lib_path, **_member(member={"hubUrl": HUB_URL, "database": {"url": url}}))
    assert any("does not verify the hub's certificate" in m and "sslmode=verify-full" in m for m in msgs), msgs
    _ok(lib_path, **_member(privateNetwork="lab", member={"hubUrl": HUB_URL, "database": {"url": url}}))


def test_member_options_on_another_role_are_refused(lib_path: str | None) -> None:
    msgs = _refused(lib_path, role="hub", tls=FLEET_TLS, member={"hubUrl": HUB_URL})
    assert any('fleet.member.* is only used with fleet.role = "member" (it is "hub")' in m for m in msgs), msgs


def test_stand_in_and_real_lib_agree(nix_instantiate: str) -> None:
    for fleet in (
        {"role": "hub", "tls": FLEET_TLS, "hub": {"listenAddress": "10.0.0.1", "members": {"10.0.0.2": "web-1"}}},
        _member(member={"hubUrl": HUB_URL, "database": {"url": FLEET_DB_URL, "passwordFile": FLEET_DB_SECRET_PATH}}),
    ):
        cfg = base(fleet=fleet)
        assert render(cfg, lib_path=str(real_lib())) == render(cfg)
