"""A NixOS system path (a `nixos-system-*` store path, /run/current-system) and the
parts of it whose change needs a reboot."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class PreflightInputError(Exception):
    """Bad input (not a NixOS system, unreadable): one line for the admin, exit 3."""


# Links in a system path whose change does not take effect until a reboot: the
# kernel, the initrd and its module tree.  `systemd` is different: a changed PID 1 is
# re-executed by switch-to-configuration (see `restart_systemd` in nixpkgs'
# pkgs/by-name/sw/switch-to-configuration-ng/src/src/main.rs, `fn main`), which a
# running host survives but which is as disruptive as it gets short of a reboot.
REBOOT_LINKS = ("kernel", "initrd", "kernel-modules")
REEXEC_LINKS = ("systemd",)

# A NixOS toplevel always has one of these (switch-to-configuration reads
# init-interface-version as required; nixos-version names the release).
_MARKERS = ("nixos-version", "init-interface-version")


@dataclass(frozen=True)
class SystemPath:
    """A resolved NixOS system: `path` is what was given, `real` its store path."""

    path: Path
    real: Path

    @property
    def units_dir(self) -> Path:
        return self.real / "etc" / "systemd" / "system"

    @property
    def store_dir(self) -> Path:
        # A toplevel is a top-level store path: its directory is the store
        # (/nix/store, or NIX_STORE_DIR for a local store in tests).
        return self.real.parent

    def link(self, name: str) -> str | None:
        """The store path a link of the system points at (None when it has none)."""
        p = self.real / name
        if not os.path.lexists(p):
            return None
        return os.path.realpath(p)


def open_system(path: str, what: str) -> SystemPath:
    """Validate `path` as a NixOS system; raise PreflightInputError naming it."""
    p = Path(path)
    try:
        real = Path(os.path.realpath(p))
        if not real.is_dir():
            raise PreflightInputError(f"{what} {path}: not a directory (expected a NixOS system path)")
        if not any((real / m).is_file() for m in _MARKERS):
            raise PreflightInputError(
                f"{what} {path}: not a NixOS system path (it has neither {' nor '.join(_MARKERS)})"
            )
        os.listdir(real)
    except PermissionError as exc:
        raise PreflightInputError(f"{what} {path}: permission denied ({exc.filename or path})") from None
    except OSError as exc:
        raise PreflightInputError(f"{what} {path}: {exc.strerror or exc}") from None
    return SystemPath(p, real)


@dataclass(frozen=True)
class LinkChange:
    name: str
    before: str | None
    after: str | None


def changed_links(current: SystemPath, new: SystemPath, names: tuple[str, ...]) -> list[LinkChange]:
    """The links among `names` that point elsewhere in `new` than in `current`."""
    out = []
    for name in names:
        a, b = current.link(name), new.link(name)
        if a != b:
            out.append(LinkChange(name, a, b))
    return out
