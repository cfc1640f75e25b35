"""Deterministic candidates: what each rule family and runbook suggests, without a model.

A *family* is the rule id of a trigger (`rule:unit-crashloop` -> `unit-crashloop`), a
threshold name (`threshold:disk` -> `disk`), else its category.  Each family names
candidate catalog actions, the runbook that explains it, and NixOS-native advice: a
declarative snippet for the admin's configuration, never applied automatically.

The review model sees the candidates as options.  When it is down, not used, or its
answer is invalid, the candidates are proposed as they are (source `rules`), so the
service is useful on weak models.  Every proposal still passes the policy.  Actions on
units are never suggested for protected units, and `notify` is always a candidate.

Units come only from trusted evidence (trigger/entry.py: the trigger's unit, and victims
that a kernel / PID 1 / systemd-coredump line named), and the host-wide disk actions
only when the disk problem is proven (a threshold or a trusted sender): text that any
local user can log suggests a notice, never a target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ai_sysadmin.incidents.correlate import CAUSE_CATEGORIES, Incident, systemd_unit

VACUUM = ("vacuum_journal", {"max_size_mb": 1024})
GC = ("collect_garbage", {"older_than_days": 14})
# What each space action frees, by the mount points that can hold it: a full /home is not
# helped by vacuuming /var/log/journal or collecting /nix/store garbage.
FREES = {
    "vacuum_journal": ("/", "/var", "/var/log", "/var/log/journal"),
    "collect_garbage": ("/", "/nix", "/nix/store"),
}


@dataclass(frozen=True)
class Family:
    actions: tuple[str | tuple[str, dict[str, Any]], ...] = ()  # "restart_unit" (unit filled in) or (id, params)
    runbook: str | None = None
    advice: tuple[str, ...] = ()  # Nix snippets; {unit} / {name} are filled from the incident
    # Host-wide actions only when the family's evidence is proven (a threshold, or a trusted
    # sender): "No space left on device" is text anyone can log, the disk's fill level is not.
    needs_proof: bool = False
    proves_space: bool = False  # proven evidence of this family shows a shortage of *space* (not of inodes)


_NONE = Family()
_CRASH = Family(
    ("reset_failed_unit", "restart_unit"),
    "crash-loop",
    ('systemd.services.{name}.serviceConfig = { Restart = "on-failure"; RestartSec = "10s"; };',),
)
_UNIT = Family(("restart_unit",), "crash-loop")
_OOM = Family(
    ("restart_unit",),
    "oom",
    (
        'systemd.services.{name}.serviceConfig.MemoryMax = "1G";  # size it to the service',
        "zramSwap.enable = true;",
        "services.earlyoom.enable = true;",
    ),
)
_DISK = Family(
    (VACUUM, GC),
    "disk-full",
    (
        'nix.gc = { automatic = true; dates = "weekly"; options = "--delete-older-than 14d"; };',
        "nix.optimise.automatic = true;",
        'services.journald.extraConfig = "SystemMaxUse=1G";',
    ),
    needs_proof=True,
    proves_space=True,
)
# Out of inodes with space left: many small files (a mail queue, sessions, a cache) that
# neither a journal vacuum (a few large files) nor a GC of an unrelated store frees.
_INODES = Family((), "disk-full")

FAMILIES: dict[str, Family] = {
    "unit-crashloop": _CRASH,
    "unit-failed": _UNIT,
    "unit-result": _UNIT,
    "unit-start-failed": _UNIT,
    "unit-timeout": _UNIT,
    "unit-dependency": Family((), "crash-loop"),
    "failed-unit": Family(("reset_failed_unit", "restart_unit"), "crash-loop"),
    "segfault": Family(("restart_unit",), "crash-loop"),
    "coredump": Family(("restart_unit",), "crash-loop"),
    "coredump-field": Family(("restart_unit",), "crash-loop"),
    "oom-kill": _OOM,
    "oomd-kill": _OOM,
    "memory-pressure": Family((), "oom", ("zramSwap.enable = true;",)),
    "disk-full": _DISK,
    "disk": _DISK,
    "inode-full": _INODES,
    "inodes": _INODES,
    "nixos-activation": Family(
        ("rollback_generation",),
        "nixos-rebuild-failed",
        ("system.autoUpgrade.allowReboot = false;  # keep upgrades from switching blindly",),
    ),
    "nix-store": Family(
        ("nix_store_repair",),
        "nix-store-corruption",
        ("nix.settings.auto-optimise-store = true;  # after the repair; hard links, not a fix",),
    ),
    "auth-failure": Family(
        (),
        "ssh-brute-force",
        ("services.fail2ban.enable = true;", "services.openssh.settings.PasswordAuthentication = false;"),
    ),
    "time-sync-lost": Family((), "time-sync", ("services.timesyncd.enable = true;  # or services.chrony.enable",)),
    "time-jump": Family((), "time-sync", ("services.timesyncd.enable = true;  # or services.chrony.enable",)),
    "certificate": Family(
        (),
        "certificate-expiry",
        (
            'security.acme = { acceptTerms = true; defaults.email = "admin@example.org"; };',
            'services.nginx.virtualHosts."example.org".enableACME = true;  # renews automatically',
        ),
    ),
    "disk-io-error": Family((), None, ("services.smartd.enable = true;",)),
    "smart": Family((), None, ("services.smartd.enable = true;",)),
    "hung-task": Family(),
    "link-down": Family(),
}
# Categories stand in for families when no rule id is known (model triggers, custom rules).
CATEGORY_FAMILIES = {
    "oom": "oom-kill",
    "disk-full": "disk-full",
    "unit-failure": "unit-failed",
    "crash": "segfault",
    "nix": "nix-store",
    "time": "time-sync-lost",
    "certificate": "certificate",
    "auth": "auth-failure",
}

_CTRL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Candidates:
    actions: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    runbooks: list[str] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)


def family_of(source: str, category: str) -> str:
    if ":" in source:
        name = source.split(":", 1)[1]
        if name in FAMILIES:
            return name
    return CATEGORY_FAMILIES.get(category, category)


UNIT_ACTIONS = ("restart_unit", "reset_failed_unit")
EFFECT_FAMILIES = frozenset(
    {
        "unit-failed",
        "unit-result",
        "unit-start-failed",
        "unit-timeout",
        "unit-dependency",
        "failed-unit",
        "unit-crashloop",
    }
)


def candidates_for(inc: Incident, is_protected: Any) -> Candidates:
    """`is_protected(unit) -> bool` (the policy's check, so candidates and policy agree).

    Unit actions target the units of the family's own triggers (and, for OOM kills and
    crashes, the units they named).  When the incident is about a cause (memory, disk,
    a crash), the failing units' own families add no unit actions: restarting a unit
    before its cause is fixed only fails again.
    """
    out = Candidates()
    evs = sorted(inc.evidence.values(), key=lambda e: (e.source == "model", e.first_seen, e.id))
    fam_units: dict[str, list[str]] = {}
    space = _space_proof(inc)
    for ev in evs:
        name = family_of(ev.source, ev.category)
        units = fam_units.setdefault(name, [])
        u = systemd_unit(ev.unit)
        # "unit X failed" is systemd's word about X only when PID 1 said it (or the collector
        # measured it); a program that logs such words names no unit but its own scope.
        # A unit whose job failed on a dependency fails again until the dependency is fixed.
        if u and u not in units and (ev.proven or name not in EFFECT_FAMILIES) and not ev.dependent:
            units.append(u)
        if ev.category in ("oom", "crash"):
            units += [v for v in _target_units(inc) if v not in units]
    cause_first = inc.category in CAUSE_CATEGORIES
    for fam_name, units in fam_units.items():
        out.families.append(fam_name)
        fam = FAMILIES.get(fam_name)
        if fam is None:
            continue
        if fam.runbook and fam.runbook not in out.runbooks:
            out.runbooks.append(fam.runbook)
        for spec in fam.actions:
            if isinstance(spec, tuple):
                if not fam.needs_proof or _frees(spec[0], space):
                    _add(out.actions, spec[0], dict(spec[1]))
            elif spec not in UNIT_ACTIONS:
                _add(out.actions, spec, {})
            elif not (cause_first and fam_name in EFFECT_FAMILIES):
                for unit in units:
                    if is_protected(unit) or (spec == "restart_unit" and not unit.endswith(".service")):
                        continue
                    _add(out.actions, spec, {"unit": unit})
        for snippet in fam.advice:
            nix_name = _nix_name(units[0]) if units else None
            if "{name}" in snippet and not nix_name:
                continue
            text = snippet.replace("{name}", nix_name or "")
            if text not in out.advice:
                out.advice.append(text)
    _add(out.actions, "notify", {"message": notify_message(inc)})
    # A unit that hit its start limit refuses `systemctl restart` until its failed state is
    # reset: whichever family named them first, reset-failed goes before the restart.
    out.actions.sort(key=lambda a: 0 if a[0] == "reset_failed_unit" else 1)
    return out


def _space_proof(inc: Incident) -> set[str | None] | None:
    """Mounts proven short of space (None in the set: a trusted sender, mount unknown); None: no proof.

    The disk families share their actions: any proven space evidence (a threshold, a kernel
    ENOSPC) proves the disk, whichever family's text came first.  Inode exhaustion does not.
    """
    mounts: set[str | None] = set()
    for ev in inc.evidence.values():
        fam = FAMILIES.get(family_of(ev.source, ev.category), _NONE)
        if ev.proven and fam.proves_space:
            mounts.add(ev.subject)
    return mounts or None


def _frees(action: str, space: set[str | None] | None) -> bool:
    """Whether `action` can free space on a mount proven full."""
    if space is None:
        return False
    return None in space or any(m in FREES.get(action, ()) for m in space)


def supported_actions(inc: Incident) -> list[str]:
    """The action ids an incident's evidence supports: what a model's proposal for it may be
    without contradicting it (actions/binding.py; stored as `incidents.candidate_actions`).

    Its candidates (the space actions only where a proven full mount is one they free), and the unit actions of
    its families even where the candidates left them out (a cause-first incident, a
    protected unit): whether the *unit* is in the evidence is checked on its own.
    """
    cands = candidates_for(inc, lambda _unit: False)
    ids = {a for a, _ in cands.actions}
    for name in cands.families:
        ids.update(spec for spec in FAMILIES.get(name, _NONE).actions if isinstance(spec, str))
    return sorted(ids)


def notify_message(inc: Incident) -> str:
    title = _CTRL.sub(" ", inc.title)[:300]
    ref = f"#{inc.id}" if inc.id is not None else "(new)"
    where = f" on {len(inc.hosts)} hosts: {', '.join(inc.host_list)}" if inc.fleet else ""
    return f"ai-sysadmin: incident {ref} [{inc.severity} {inc.category}] {title}{where}"[:500]  # the catalog's bound


def _target_units(inc: Incident) -> list[str]:
    """The units an OOM kill or crash named: victims by unit name, else units matching a victim process."""
    from ai_sysadmin.incidents.correlate import _names

    victims = sorted(v for v in inc.victims if systemd_unit(v))
    return victims + sorted(u for u in inc.units if u not in victims and _names(inc.victims, u))


def _nix_name(unit: str) -> str | None:
    name = unit.rsplit(".", 1)[0]
    if not name.replace("-", "").replace("_", "").isalnum() or "@" in name:
        return None
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_'-]*", name) else f'"{name}"'


def _add(actions: list[tuple[str, dict[str, Any]]], action: str, params: dict[str, Any]) -> None:
    if (action, params) not in actions:
        actions.append((action, params))
