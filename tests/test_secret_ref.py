"""`*_file` references resolve one way everywhere: a path, or a systemd credential name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.actions.signing import KeyUnavailable, load_key
from ai_sysadmin.compose.member import HubPasswordUnavailable, hub_password
from ai_sysadmin.config import parse_config
from ai_sysadmin.secret import CredentialUnavailable, credential_path


def test_a_path_is_itself_and_a_name_is_a_credential(tmp_path: Path) -> None:
    assert credential_path("/etc/x/key", "approval key", {}) == Path("/etc/x/key")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    assert credential_path("approval-key", "approval key", env) == tmp_path / "approval-key"
    with pytest.raises(CredentialUnavailable, match=r"approval key credential 'k' needs \$CREDENTIALS_DIRECTORY"):
        credential_path("k", "approval key", {})


def test_every_reader_resolves_a_credential_name_the_same_way(tmp_path: Path) -> None:
    (tmp_path / "approval-key").write_text("k" * 40 + "\n")
    (tmp_path / "fleet-db-password").write_text("s3cret\n")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    cfg = parse_config({"actions": {"approval_key_file": "approval-key"}}, env={})
    assert load_key(cfg, env=env) == b"k" * 40
    assert hub_password("fleet-db-password", env) == "s3cret"
    # and without $CREDENTIALS_DIRECTORY each says which secret it could not find
    with pytest.raises(KeyUnavailable, match="approval key credential 'approval-key'"):
        load_key(cfg, env={})
    with pytest.raises(HubPasswordUnavailable, match="hub password credential 'fleet-db-password'"):
        hub_password("fleet-db-password", {})
