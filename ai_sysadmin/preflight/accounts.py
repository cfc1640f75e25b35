"""Users and groups the new system no longer declares.

A NixOS system path holds no /etc/passwd (that file is written at activation).  The
declared accounts are in a `users-groups.json` store path that nixpkgs'
nixos/modules/config/users-groups.nix writes (`spec`) and hands to
update-users-groups.pl in the activation script, so the system's `activate` script
names it.  Without that file on either side (a container without users, an unusual
build) the comparison is reported as unavailable, not as "nothing removed".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ai_sysadmin.preflight.system import SystemPath


@dataclass(frozen=True)
class Account:
    name: str
    system: bool  # isSystemUser (users); groups are always "system" here


@dataclass(frozen=True)
class Accounts:
    spec: str  # the users-groups.json store path read
    users: dict[str, Account]
    groups: frozenset[str]


@dataclass(frozen=True)
class AccountChanges:
    removed_users: tuple[Account, ...]
    removed_groups: tuple[str, ...]
    current_spec: str
    new_spec: str


def find_spec(system: SystemPath) -> Path | None:
    """The users-groups.json the system's activation script names, if any."""
    try:
        text = (system.real / "activate").read_text(errors="replace")
    except OSError:
        return None
    store = re.escape(str(system.store_dir))
    m = re.search(store + r"/[0-9a-z]{32}-users-groups\.json", text)
    return Path(m.group(0)) if m else None


def read_accounts(system: SystemPath) -> Accounts | None:
    spec = find_spec(system)
    if spec is None:
        return None
    try:
        data = json.loads(spec.read_text())
    except (OSError, ValueError):
        return None
    users = {
        u["name"]: Account(u["name"], bool(u.get("isSystemUser", False)))
        for u in data.get("users", [])
        if isinstance(u, dict) and isinstance(u.get("name"), str)
    }
    groups = frozenset(
        g["name"] for g in data.get("groups", []) if isinstance(g, dict) and isinstance(g.get("name"), str)
    )
    return Accounts(str(spec), users, groups)


def removed(current: SystemPath, new: SystemPath) -> AccountChanges | None:
    """Accounts declared by `current` and not by `new`; None when either side has no spec."""
    a, b = read_accounts(current), read_accounts(new)
    if a is None or b is None:
        return None
    users = tuple(a.users[n] for n in sorted(a.users.keys() - b.users.keys()))
    return AccountChanges(users, tuple(sorted(a.groups - b.groups)), a.spec, b.spec)
