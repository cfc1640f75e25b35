"""Which units a switch would start, stop, restart or reload.

Derived from the two systems' `etc/systemd/system` the way nixpkgs'
switch-to-configuration decides (read, not copied): pkgs/by-name/sw/
switch-to-configuration-ng/src/src/main.rs -- `compare_units` (which differences
count), `handle_modified_unit` (restart, stop and start, reload or skip, from
X-ReloadIfChanged, X-RestartIfChanged, RefuseManualStop, X-OnlyManualStart,
X-StopIfChanged and socket activation) and the unit loop in `fn main` (removed units
stop unless X-StopOnRemoval=false); the older perl nixos/modules/system/activation/
switch-to-configuration.pl has the same rules in `compare_units` and
`handle_modified_unit`.

Two differences, both because preflight reads files and not the running manager:
every unit of the current system is treated as active (switch-to-configuration only
looks at active ones), and a template (`foo@.service`) stands for all its instances.
New units are started by the switch when a target wants them (switch-to-configuration
restarts the active targets, which pulls them in).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

UnitInfo = dict[str, dict[str, list[str]]]

_UNIT_SUFFIXES = (
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".mount",
    ".automount",
    ".path",
    ".slice",
    ".swap",
    ".scope",
)
# [Unit] keys whose change neither restarts nor reloads (compare_units' ignore list).
_UNIT_IGNORED = frozenset(
    {
        "X-Reload-Triggers",
        "Description",
        "Documentation",
        "OnFailure",
        "OnSuccess",
        "OnFailureJobMode",
        "IgnoreOnIsolate",
        "StopWhenUnneeded",
        "RefuseManualStart",
        "RefuseManualStop",
        "AllowIsolate",
        "CollectMode",
        "SourcePath",
    }
)
# Targets switch-to-configuration never restarts directly.
_NEVER_RESTARTED = frozenset({"sysinit.target", "basic.target", "multi-user.target", "graphical.target"})
# / and /nix are remounted, never unmounted.
_REMOUNT_ONLY = frozenset({"-.mount", "nix.mount"})
_WANTS_DIRS = (".wants", ".requires", ".upholds")


class UnitAction(str, enum.Enum):
    START = "start"  # a new unit a target wants
    STOP = "stop"  # removed from the new system
    STOP_START = "stop-start"  # stopped before activation, started after (X-StopIfChanged, the default)
    RESTART = "restart"
    RELOAD = "reload"
    SKIP = "skip"  # changed, but left running with its old definition
    ADD = "add"  # new, but nothing starts it during the switch


DISRUPTIVE = frozenset({UnitAction.STOP, UnitAction.STOP_START, UnitAction.RESTART})


@dataclass(frozen=True)
class PlannedUnit:
    unit: str
    action: UnitAction
    reason: str


class Comparison(enum.Enum):
    EQUAL = "equal"
    RELOAD = "reload"
    RESTART = "restart"


# --------------------------------------------------------------------------- unit files


def parse_unit_text(text: str, into: UnitInfo) -> None:
    """Add a unit file's settings to `into`: repeated keys accumulate, an empty value
    clears the key (systemd's reset), [Install] is ignored (it does not affect a switch)."""
    section: str | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):  # continuation: systemd joins with a space
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section != "Install":
                into.setdefault(section, {})
            continue
        if section is None or section == "Install" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        values = into[section].setdefault(key, [])
        if value:
            values.append(value)
        else:
            values.clear()


def parse_unit(path: Path) -> UnitInfo:
    """A unit file and its drop-ins (`<unit>.d/*.conf`, in name order)."""
    info: UnitInfo = {}
    parse_unit_text(path.read_text(errors="replace"), info)
    dropins = path.parent / f"{path.name}.d"
    if dropins.is_dir():
        for conf in sorted(dropins.glob("*.conf")):
            parse_unit_text(conf.read_text(errors="replace"), info)
    return info


def flag(info: UnitInfo, section: str, key: str, default: bool) -> bool:
    values = info.get(section, {}).get(key)
    if not values:
        return default
    return values[-1].lower() in ("1", "yes", "true", "on")


def compare(current: UnitInfo, new: UnitInfo) -> Comparison:
    result = Comparison.EQUAL
    for section in current.keys() | new.keys():
        a, b = current.get(section, {}), new.get(section, {})
        for key in a.keys() | b.keys():
            if a.get(key) == b.get(key):
                continue
            if section == "Unit" and key == "X-Reload-Triggers":
                result = Comparison.RELOAD
            elif section == "Unit" and key in _UNIT_IGNORED:
                continue
            elif section == "Mount" and key == "Options":
                result = Comparison.RELOAD
            else:
                return Comparison.RESTART
    return result


# --------------------------------------------------------------------------- systems


@dataclass(frozen=True)
class UnitDir:
    """One system's units: name -> file, each file's identity, drop-in directories, and
    what targets want."""

    files: dict[str, Path]
    ids: dict[str, str]  # the store path a unit's symlink names (/dev/null: masked)
    dropins: frozenset[str]  # units with a <unit>.d directory
    wanted: dict[str, str]  # unit -> a target (or unit) that wants it

    def fingerprint(self, unit: str) -> tuple[str, ...]:
        """Store paths of the unit file and its drop-ins: equal means unchanged (NixOS
        puts each unit's text in its own store path), so most units are never parsed."""
        parts = [self.ids[unit]]
        if unit in self.dropins:
            d = self.files[unit].parent / f"{unit}.d"
            parts += [f"{c.name}={_identity(c)}" for c in sorted(d.glob("*.conf"))]
        return tuple(parts)

    def masked(self, unit: str) -> bool:
        return self.ids[unit] == "/dev/null"


def _identity(path: Path | str) -> str:
    """Where a unit file's content lives.  NixOS links each unit to an absolute store
    path: one readlink.  Anything else (a relative alias, a plain file) is resolved."""
    try:
        target = os.readlink(path)
    except OSError:  # not a link
        return os.path.realpath(path)
    return target if target.startswith("/") else os.path.realpath(path)


def read_unit_dir(units_dir: Path) -> UnitDir:
    # Resolved once: on NixOS etc/ and etc/systemd/system are links into other store paths.
    units_dir = Path(os.path.realpath(units_dir))
    files: dict[str, Path] = {}
    ids: dict[str, str] = {}
    dropins: set[str] = set()
    wanted: dict[str, str] = {}
    try:
        entries = list(os.scandir(units_dir))
    except FileNotFoundError:
        return UnitDir({}, {}, frozenset(), {})
    for e in entries:
        if e.name.endswith(_WANTS_DIRS) and e.is_dir():
            owner = e.name.rsplit(".", 1)[0]
            for w in os.listdir(e.path):
                wanted.setdefault(w, owner)
        elif e.name.endswith(".d") and e.is_dir():
            dropins.add(e.name[:-2])
        elif e.name.endswith(_UNIT_SUFFIXES) and not e.is_dir():
            files[e.name] = Path(e.path)
            ids[e.name] = _identity(e.path)
    return UnitDir(files, ids, frozenset(dropins), wanted)


def plan(current_dir: Path, new_dir: Path) -> list[PlannedUnit]:
    cur, new = read_unit_dir(current_dir), read_unit_dir(new_dir)
    out: list[PlannedUnit] = []
    for unit in sorted(cur.files.keys() | new.files.keys()):
        p = _plan_one(unit, cur, new)
        if p is not None:
            out.append(p)
    return out


def _plan_one(unit: str, cur: UnitDir, new: UnitDir) -> PlannedUnit | None:
    if unit not in cur.files or cur.masked(unit):
        if unit not in new.files or new.masked(unit):
            return None
        owner = new.wanted.get(unit)
        if owner is not None:
            return PlannedUnit(unit, UnitAction.START, f"new unit, wanted by {owner}")
        return PlannedUnit(unit, UnitAction.ADD, "new unit; nothing starts it during the switch")
    if unit not in new.files or new.masked(unit):
        if unit.endswith(".target") and unit in _NEVER_RESTARTED:
            return None
        if flag(parse_unit(cur.files[unit]), "Unit", "X-StopOnRemoval", True):
            return PlannedUnit(unit, UnitAction.STOP, "removed from the new system")
        return PlannedUnit(unit, UnitAction.SKIP, "removed, but X-StopOnRemoval=false keeps it running")
    if cur.fingerprint(unit) == new.fingerprint(unit):
        return None
    new_info = parse_unit(new.files[unit])
    cmp = compare(parse_unit(cur.files[unit]), new_info)
    if cmp is Comparison.EQUAL:
        return None
    if unit.endswith(".target"):
        return None  # active targets are started anyway; a changed one changes nothing by itself
    if cmp is Comparison.RELOAD:
        why = "only mount options changed" if unit.endswith(".mount") else "only X-Reload-Triggers changed"
        return PlannedUnit(unit, UnitAction.RELOAD, why)
    return _modified(unit, new_info, new)


def _modified(unit: str, info: UnitInfo, new: UnitDir) -> PlannedUnit | None:
    if unit in _NEVER_RESTARTED or unit.endswith((".slice", ".unit")):
        return None
    if unit.endswith(".mount"):
        if unit in _REMOUNT_ONLY:
            return PlannedUnit(unit, UnitAction.RELOAD, "changed; / and /nix are remounted, never unmounted")
        return PlannedUnit(unit, UnitAction.RESTART, "changed mount: unmounted and mounted again")
    if unit.endswith(".socket"):
        return PlannedUnit(unit, UnitAction.SKIP, "changed socket: switch-to-configuration does not restart sockets")
    if flag(info, "Service", "X-ReloadIfChanged", False):
        return PlannedUnit(unit, UnitAction.RELOAD, "changed; X-ReloadIfChanged=true")
    for section, key, default in (
        ("Service", "X-RestartIfChanged", True),
        ("Unit", "RefuseManualStop", False),
        ("Unit", "X-OnlyManualStart", False),
    ):
        if flag(info, section, key, default) != default:
            return PlannedUnit(
                unit, UnitAction.SKIP, f"changed, not restarted: {key}={'true' if not default else 'false'}"
            )
    instances = " (each running instance)" if "@." in unit else ""
    if not unit.endswith(".service") or not flag(info, "Service", "X-StopIfChanged", True):
        return PlannedUnit(unit, UnitAction.RESTART, f"changed{instances}")
    sockets = " ".join(info.get("Service", {}).get("Sockets", [])).split() or [unit.rsplit(".", 1)[0] + ".socket"]
    via = [s for s in sockets if s in new.files]
    if via:
        return PlannedUnit(
            unit,
            UnitAction.STOP_START,
            f"changed{instances}; socket-activated: {', '.join(via)} restarted, the service on demand",
        )
    return PlannedUnit(unit, UnitAction.STOP_START, f"changed{instances}: stopped before activation, started after")
