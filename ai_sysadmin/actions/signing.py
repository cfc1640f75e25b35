"""The trust anchor of a person's approval: an HMAC-SHA256 over what was approved.

The signed message binds the action id, the catalog id, the canonical parameters, the
approver and both timestamps, so an approval cannot be moved to another action, have
its parameters changed, change hands, or be extended.  The key lives in a file only
the executor, the API and root can read (`actions.approval_key_file`); the
orchestrator, which owns the tables, never has it -- a row it forges carries no valid
signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

from ai_sysadmin.config import Config

MIN_KEY_BYTES = 16


class KeyUnavailable(Exception):
    """No approval key for this process (not configured, unreadable, too short)."""


def load_key(cfg: Config, override: str | None = None, env: Mapping[str, str] | None = None) -> bytes:
    ref = override or cfg.actions.approval_key_file
    env = os.environ if env is None else env
    if not ref:
        raise KeyUnavailable("actions.approval_key_file is not set; approvals need the approval key")
    if "/" in ref:
        path = Path(ref)
    else:
        cred = env.get("CREDENTIALS_DIRECTORY")
        if not cred:
            raise KeyUnavailable(f"approval key credential {ref!r} needs $CREDENTIALS_DIRECTORY (LoadCredential=)")
        path = Path(cred) / ref
    try:
        key = path.read_bytes().strip()
    except PermissionError:
        raise KeyUnavailable(f"approval key {str(path)!r} is not readable by this user (run as root, "
                             "or through the API)") from None
    except OSError as exc:
        raise KeyUnavailable(f"cannot read approval key {str(path)!r}: {exc.strerror or exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyUnavailable(f"approval key {str(path)!r} is shorter than {MIN_KEY_BYTES} bytes")
    return key


def message(action_id: int, action: str, params: dict[str, Any], approver: str, approved_at: datetime,
            expires_at: datetime) -> bytes:
    # Whole seconds since the epoch: exact after a round trip through timestamptz.
    doc = {"action_id": int(action_id), "action": action, "params": params, "approver": approver,
           "approved_at": int(approved_at.timestamp()), "expires_at": int(expires_at.timestamp())}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(key: bytes, *args: Any) -> str:
    return hmac.new(key, message(*args), hashlib.sha256).hexdigest()


def valid(key: bytes, signature: str | None, *args: Any) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(key, *args), signature)
