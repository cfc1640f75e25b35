"""The world, not the story: each catalog action's declared preconditions, checked on the live host.

A proposal explains why an action is needed ("the unit failed", "the disk is full"); the
explanation is model or log text and proves nothing.  Before the executor runs an action
it reads the host itself: systemd's own state of the unit (`systemctl show`), the usage
of the file system that holds the journal or the Nix store (statvfs, the collector's
formula, against `thresholds.disk_percent`, the level at which the collector raises its
disk trigger), and the system profile's generation links.  Which checks apply is data in
the catalog (`ActionSpec.requires`); an action that declares none (`notify`) has none.

`unmet` answers with the first unmet precondition in words, or None.  It fails closed:
a state it cannot read (no systemd, no Nix store) is an unmet precondition.

`bind` is the one proposer-side part: a rollback proposal that does not name the
generation it rolls back from is bound to the current one when it is recorded, so the
row (and a person's signed approval) names the system it undoes, and the executor
refuses it once that is no longer the running system.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ai_sysadmin.actions.catalog import Paths, Precondition, ValidatedAction
from ai_sysadmin.actions.verification import JOURNAL_DIRS, _generation, has_systemd, store_dir, unit_props
from ai_sysadmin.config import Config

UNIT_PROPS = ("LoadState", "ActiveState", "SubState", "NRestarts")


def used_percent(path: str) -> float:
    """Usage of the file system holding `path`, as the collector and `df` compute it (root's reserve excluded)."""
    st = os.statvfs(path)
    used = st.f_blocks - st.f_bfree
    usable = used + st.f_bavail
    return 100.0 * used / usable if usable else 0.0


def journal_dir() -> str | None:
    """Where journald keeps its files: persistent (/var/log/journal) when that exists, else volatile."""
    return next((d for d in JOURNAL_DIRS if os.path.isdir(d)), None)


@dataclass
class _Probe:
    """One check's reads of the host, each made once."""

    cfg: Config
    paths: Paths
    va: ValidatedAction
    _props: dict[str, str] | None = field(default=None)

    async def unit(self) -> dict[str, str]:
        if self._props is None:
            self._props = await unit_props(str(self.va.unit), *UNIT_PROPS)
        return self._props


Check = Callable[[_Probe], Awaitable[str | None]]


async def _unit_loaded(p: _Probe) -> str | None:
    if not has_systemd():
        return "no systemd here: cannot read the unit's state"
    load = (await p.unit()).get("LoadState")
    return None if load == "loaded" else f"{p.va.unit} is not a loaded unit (LoadState={load or 'unknown'})"


def restart_looping(props: dict[str, str]) -> bool:
    active, sub = props.get("ActiveState"), props.get("SubState")
    restarts = props.get("NRestarts", "")
    return sub == "auto-restart" or (
        active in ("activating", "deactivating") and restarts.isdigit() and int(restarts) > 0
    )


async def _unit_failed(p: _Probe) -> str | None:
    if not has_systemd():
        return "no systemd here: cannot read the unit's state"
    props = await p.unit()
    if props.get("ActiveState") == "failed" or restart_looping(props):
        return None
    return (
        f"{p.va.unit} is neither failed nor restart-looping (ActiveState={props.get('ActiveState')}, "
        f"SubState={props.get('SubState')}, NRestarts={props.get('NRestarts')})"
    )


def _fs_full(what: str, path: str | None, threshold: float) -> str | None:
    if path is None:
        return f"{what} is not on this host: cannot tell how full its file system is"
    try:
        pct = used_percent(path)
    except OSError as exc:
        return f"cannot read the usage of {path}: {exc.strerror}"
    if pct >= threshold:
        return None
    return f"the file system holding {path} is {pct:.1f}% full, below thresholds.disk_percent {threshold:g}%"


async def _journal_full(p: _Probe) -> str | None:
    return _fs_full("the journal", journal_dir(), p.cfg.thresholds.disk_percent)


async def _store_full(p: _Probe) -> str | None:
    store = store_dir()
    return _fs_full(f"the Nix store ({store})", store if os.path.isdir(store) else None, p.cfg.thresholds.disk_percent)


async def _generation_bound(p: _Probe) -> str | None:
    want = p.va.params.get("from_generation")
    if not isinstance(want, int):
        return "the rollback names no generation to roll back from (params.from_generation)"
    profile = p.paths.system_profile
    current, gens = _generation(profile)
    if current is None:
        return f"cannot read the current generation of {profile}"
    if current != want:
        return f"{profile} is at generation {current}, not {want}: the system changed since this was proposed"
    running = os.path.realpath(p.paths.current_system)
    if running != gens.get(current):
        return f"{p.paths.current_system} is not generation {want} ({running})"
    if not any(n < current for n in gens):
        return f"{profile} has no generation before {current}"
    return None


CHECKS: dict[Precondition, Check] = {
    Precondition.UNIT_LOADED: _unit_loaded,
    Precondition.UNIT_FAILED_OR_LOOPING: _unit_failed,
    Precondition.JOURNAL_FS_FULL: _journal_full,
    Precondition.NIX_STORE_FS_FULL: _store_full,
    Precondition.GENERATION_BOUND: _generation_bound,
}


async def unmet(va: ValidatedAction, cfg: Config, paths: Paths) -> str | None:
    """The first of the action's declared preconditions that the live host does not meet, in words."""
    probe = _Probe(cfg, paths, va)
    for pre in va.spec.requires:
        reason = await CHECKS[pre](probe)
        if reason is not None:
            return reason
    return None


def bind(va: ValidatedAction, paths: Paths) -> ValidatedAction:
    """A rollback that names no generation is bound to the current one (unbound when unreadable)."""
    if Precondition.GENERATION_BOUND not in va.spec.requires or "from_generation" in va.params:
        return va
    current, _ = _generation(paths.system_profile)
    return va if current is None else ValidatedAction(va.spec, {**va.params, "from_generation": current})
