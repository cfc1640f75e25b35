"""The trust anchor of a person's approval: an HMAC-SHA256 over what was approved.

A person approves a *digest* of exactly what they were shown (`digest`: action id,
catalog action, parameters, risk, target, incident, host); the signed message binds that
digest, the host the action runs on, the approver and both timestamps, so an approval
cannot be moved to another action or another host (docs/fleet.md: a member's executor
checks it with its own host id), survive a change of the row, change hands, or be
extended.  A person's other
decisions that lift caution -- a resume, a pause that shortens another, a breaker
clearing -- are signed the same way (`decision_message`).  The key lives in a file only
the executor, the API and root can read (`actions.approval_key_file`); the
orchestrator, which owns the tables, never has it -- a row it forges carries no valid
signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.secret import CredentialUnavailable, credential_path

MIN_KEY_BYTES = 16


class KeyUnavailable(Exception):
    """No approval key for this process (not configured, unreadable, too short)."""


def load_key(cfg: Config, override: str | None = None, env: Mapping[str, str] | None = None) -> bytes:
    ref = override or cfg.actions.approval_key_file
    if not ref:
        raise KeyUnavailable("actions.approval_key_file is not set; approvals need the approval key")
    try:
        path = credential_path(ref, "approval key", env)
    except CredentialUnavailable as exc:
        raise KeyUnavailable(str(exc)) from None
    try:
        key = path.read_bytes().strip()
    except PermissionError:
        raise KeyUnavailable(
            f"approval key {str(path)!r} is not readable by this user (run as root, or through the API)"
        ) from None
    except OSError as exc:
        raise KeyUnavailable(f"cannot read approval key {str(path)!r}: {exc.strerror or exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyUnavailable(f"approval key {str(path)!r} is shorter than {MIN_KEY_BYTES} bytes")
    return key


DIGEST_FIELDS = ("id", "action", "params", "risk", "target", "incident_id", "host")


def _canonical(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(row: Mapping[str, Any]) -> str:
    """SHA-256 of what a person is shown and approves: an `actions` row's deciding fields."""
    return hashlib.sha256(_canonical({f: row.get(f) for f in DIGEST_FIELDS})).hexdigest()


def message(
    action_id: int, content_digest: str, approver: str, approved_at: datetime, expires_at: datetime, host: str
) -> bytes:
    # Whole seconds since the epoch: exact after a round trip through timestamptz.  The host
    # is signed on its own, not only inside the digest: the executor checks it against its
    # own host id, never against what the row says (v3; v2 approvals had no host).
    return _canonical(
        {
            "v": 3,
            "host": host,
            "action_id": int(action_id),
            "digest": content_digest,
            "approver": approver,
            "approved_at": int(approved_at.timestamp()),
            "expires_at": int(expires_at.timestamp()),
        }
    )


def decision_message(kind: str, target: str | None, until: datetime | None, actor: str, at: datetime) -> bytes:
    return _canonical(
        {
            "v": 2,
            "decision": kind,
            "target": target,
            "actor": actor,
            "at": int(at.timestamp()),
            "until": int(until.timestamp()) if until else None,
        }
    )


def _mac(key: bytes, msg: bytes) -> str:
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def sign(key: bytes, *args: Any) -> str:
    return _mac(key, message(*args))


def valid(key: bytes, signature: str | None, *args: Any) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(key, *args), signature)


def sign_decision(key: bytes, *args: Any) -> str:
    return _mac(key, decision_message(*args))


def valid_decision(key: bytes, signature: str | None, *args: Any) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign_decision(key, *args), signature)
