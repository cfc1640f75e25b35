"""System generations as real store paths in a throwaway Nix store (Debian's nix-bin).

Shared by the preflight tests (tests/preflight/) and bench/preflight.py.

The store, state and configuration live under a temp dir (NIX_STORE_DIR, NIX_STATE_DIR,
NIX_CONF_DIR), as in tests/actions/test_nix.py; generation.nix lays each generation
out as a NixOS toplevel (units in etc/systemd/system, kernel/initrd/kernel-modules/
systemd links, `activate` naming users-groups.json, packages in the closure).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from rig.paths import nix_tool
from rig.require import need

HERE = Path(__file__).resolve().parent


def unit(description: str, exec_start: str, service: str = "", unit_extra: str = "") -> str:
    return (
        f"[Unit]\nDescription={description}\n{unit_extra}\n[Service]\nExecStart={exec_start}\n{service}\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


# Generation 1: what runs now.
BASE: dict[str, Any] = {
    "name": "gen1",
    "units": {
        "web.service": unit("web", "/bin/web --v1"),
        "sshd.service": unit("SSH daemon", "/bin/sshd -D"),
        "dbus.service": unit("D-Bus", "/bin/dbus-daemon --v1", "X-RestartIfChanged=false"),
        "reloader.service": unit("reloader", "/bin/reloader --v1", "X-ReloadIfChanged=true"),
        "quiet.service": unit("quiet", "/bin/quiet"),
        "ai-sysadmin.service": unit("ai-sysadmin", "/bin/ai-sysadmin run"),
        "old.service": unit("old", "/bin/old"),
        "multi-user.target": "[Unit]\nDescription=Multi-User System\n",
    },
    "wants": ["web.service", "sshd.service", "ai-sysadmin.service", "old.service"],
    "kernel": "6.6.1",
    "systemd": "256.1",
    "users": [
        {"name": "root", "isSystemUser": False},
        {"name": "alice", "isSystemUser": False},
        {"name": "sshd", "isSystemUser": True},
        {"name": "svc", "isSystemUser": True},
    ],
    "groups": ["root", "wheel", "alice", "sshd", "svc"],
    "packages": [{"name": "hello", "version": "1.0", "kib": 16}, {"name": "tool", "version": "2.0", "kib": 4}],
}


def variant(name: str, **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec["name"] = name
    units = changes.pop("units", {})
    for n, text in units.items():
        if text is None:
            spec["units"].pop(n, None)
            spec["wants"] = [w for w in spec["wants"] if w != n]
        else:
            spec["units"][n] = text
    spec["wants"] += changes.pop("add_wants", [])
    spec.update(changes)
    return spec


class NixStore:
    def __init__(self, base: Path):
        self.base = base
        self.env = {
            "NIX_STORE_DIR": str(base / "store"),
            "NIX_STATE_DIR": str(base / "var"),
            "NIX_LOG_DIR": str(base / "var/log"),
            "NIX_CONF_DIR": str(base / "etc"),
        }
        nix_build, nix = nix_tool("nix-build"), nix_tool("nix")
        if nix_build is None or nix is None:
            need("nix-bin not installed (run scripts/provision-nix.sh)")
        self.nix_build: str = nix_build  # type: ignore[assignment]
        self.nix: str = nix  # type: ignore[assignment]
        (base / "etc").mkdir(parents=True, exist_ok=True)
        (base / "etc/nix.conf").write_text("build-users-group =\nsandbox = false\nsubstituters =\n")
        (base / "specs").mkdir(exist_ok=True)

    def full_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def build(self, spec: dict[str, Any]) -> str:
        f = self.base / "specs" / f"{spec['name']}.json"
        f.write_text(json.dumps(spec))
        r = subprocess.run(
            [
                self.nix_build,
                str(HERE / "generation.nix"),
                "--argstr",
                "specFile",
                str(f),
                "--out-link",
                str(self.base / "specs" / spec["name"]),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=self.full_env(),
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
