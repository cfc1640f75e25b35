"""One eval scenario: a journal, a host snapshot and an answer key, loaded and checked.

A scenario is one JSON file (ai_sysadmin/eval/scenarios/*.json, or a directory of your
own).  Its parts:

* `journal`: journal entries with their journald fields as `journalctl -o json` writes
  them (`MESSAGE`, `PRIORITY`, `_PID`, `_SYSTEMD_UNIT`, `_TRANSPORT`, `UNIT`, ...) plus
  `t`, seconds after the scenario's start.  They are written out as an export file and
  replayed through the real L1 reader, so the trusted-field rules apply as on a host.
* `host`: what the collector would see -- `units.failed`, `disks` (mount, used and
  inode percent, largest directories), `memory`, `processes`, NixOS `generations`.
  Disk and memory figures become metric samples (threshold triggers, review context);
  failed units become the unit states.  The L4 investigation's tools read all of it
  through eval.snapshot_host (a stand-in for the live host).  Optional, for L4 only:
  `units.status` (unit -> `systemctl show` properties, e.g. {"Result": "exit-code",
  "NRestarts": 5}), `units.dependencies` (unit -> {"Requires": [...], "WantedBy": [...]}),
  `disks[].size_gb` and `.fstype`, `generations[].closure_diff` (the `nix store
  diff-closures` text from the generation listed before it), `.store_path`, `.booted`.
* `key`: the answer key, scored without a model (eval.score).

Every error names the file and the field.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ai_sysadmin.trigger.model import CATEGORIES

T0_USEC = 1_750_000_000_000_000  # 2025-06-15 15:06:40 UTC: every scenario starts here
SNAPSHOT_AFTER_S = 5.0  # the host snapshot is taken this long after the journal starts


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class ActionSpec:
    """An action (and the parameters it must have) in the key; other parameters may differ."""

    action: str
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, action: str, params: dict[str, Any] | None) -> bool:
        params = params or {}
        return action == self.action and all(params.get(k) == v for k, v in self.params.items())

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "params": self.params}


@dataclass(frozen=True)
class RootCause:
    category: str
    unit: str | None = None  # the unit the cause is about; None: host-wide (disk, time, ...)


@dataclass(frozen=True)
class Key:
    incidents: int | None  # how many incidents a good run opens; None: not scored
    root_causes: tuple[RootCause, ...]  # one per expected incident that has a cause to name
    acceptable: tuple[ActionSpec, ...]  # any one of them proposed is "right"
    never: tuple[ActionSpec, ...]  # must never be proposed (counted apart from "wrong")
    injected: tuple[ActionSpec, ...]  # what the attacker's log lines ask for (injection scenarios)
    neutral: tuple[ActionSpec, ...]  # neither right nor wrong (default: notify)
    rules_incidents: int | None  # what the deterministic path (no model) opens, when it differs


@dataclass(frozen=True)
class Scenario:
    name: str
    family: str
    description: str
    journal: list[dict[str, Any]]
    host: dict[str, Any]
    key: Key
    path: str = ""

    @property
    def injection(self) -> bool:
        return bool(self.key.injected)

    def export_lines(self) -> Iterator[str]:
        """The journal as `journalctl -o json` lines (what L1's reader reads)."""
        for i, e in enumerate(self.journal):
            row = {
                k: (str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v)
                for k, v in e.items()
                if k != "t"
            }
            row["__REALTIME_TIMESTAMP"] = str(T0_USEC + int(float(e.get("t", i)) * 1e6))
            row["__CURSOR"] = f"s=eval-{self.name};i={i}"
            row.setdefault("_BOOT_ID", "0f" * 16)
            row.setdefault("_HOSTNAME", "nixos")
            yield json.dumps(row, ensure_ascii=False)

    def write_export(self, directory: Path) -> Path:
        path = directory / f"{self.name}.export.json"
        path.write_text("".join(line + "\n" for line in self.export_lines()), encoding="utf-8")
        return path

    def snapshot(self) -> tuple[list[Any], Any]:
        """(metric samples, UnitStates) of the host snapshot, for thresholds and the review context."""
        from ai_sysadmin.collect.units import UnitStates
        from ai_sysadmin.store.metrics import Sample

        ts = T0_USEC / 1e6 + SNAPSHOT_AFTER_S
        samples = []
        for d in self.host.get("disks", []):
            samples.append(Sample(ts, "disk.used_percent", float(d["used_percent"]), d["mount"]))
            if "inodes_used_percent" in d:
                samples.append(Sample(ts, "disk.inodes_used_percent", float(d["inodes_used_percent"]), d["mount"]))
        mem = self.host.get("memory") or {}
        for name in ("mem.percent", "swap.percent", "psi.memory.some_avg10"):
            key = name.split(".", 1)[1].replace(".", "_")
            if key in mem:
                samples.append(Sample(ts, name, float(mem[key]), ""))
        units = self.host.get("units")
        states = (
            UnitStates(True, states={u: "failed" for u in units.get("failed", [])})
            if units is not None
            else UnitStates(False, "not in the snapshot")
        )
        return samples, states


# ---------------------------------------------------------------- loading


def shipped_dir() -> Path:
    return Path(str(resources.files("ai_sysadmin.eval") / "scenarios"))


def scenario_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or shipped_dir()).glob("*.json"))


def load_scenario(path: Path) -> Scenario:
    """One scenario file, checked; ScenarioError names the file and the field."""
    where = path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{where}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: must be a JSON object")
    name = _str(data, "name", where)
    journal = data.get("journal")
    if not isinstance(journal, list) or not all(isinstance(e, dict) for e in journal):
        raise ScenarioError(f"{where}: journal: must be a list of objects")
    for i, e in enumerate(journal):
        if not isinstance(e.get("MESSAGE"), str):
            raise ScenarioError(f"{where}: journal[{i}].MESSAGE: must be a string")
        if not isinstance(e.get("t", 0), (int, float)):
            raise ScenarioError(f"{where}: journal[{i}].t: must be a number of seconds")
    host = data.get("host", {})
    if not isinstance(host, dict):
        raise ScenarioError(f"{where}: host: must be an object")
    _check_host(host, where)
    return Scenario(
        name=name,
        family=_str(data, "family", where),
        description=str(data.get("description", "")),
        journal=journal,
        host=host,
        key=_key(data.get("key"), f"{where}: key"),
        path=str(path),
    )


def _str(data: dict[str, Any], name: str, where: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ScenarioError(f"{where}: {name}: must be a non-empty string")
    return value


def _check_host(host: dict[str, Any], where: str) -> None:
    units = host.get("units")
    if units is not None and (
        not isinstance(units, dict)
        or not isinstance(units.get("failed", []), list)
        or not all(isinstance(u, str) for u in units.get("failed", []))
    ):
        raise ScenarioError(f"{where}: host.units: must be an object with a failed list of unit names")
    if not isinstance(host.get("disks", []), list):
        raise ScenarioError(f"{where}: host.disks: must be a list")
    for i, d in enumerate(host.get("disks", [])):
        if not isinstance(d, dict) or not isinstance(d.get("mount"), str):
            raise ScenarioError(f"{where}: host.disks[{i}].mount: must be a string")
        for k in ("used_percent", "inodes_used_percent"):
            if k in d and (not isinstance(d[k], (int, float)) or isinstance(d[k], bool)):
                raise ScenarioError(f"{where}: host.disks[{i}].{k}: must be a number")
        if "used_percent" not in d:
            raise ScenarioError(f"{where}: host.disks[{i}].used_percent: missing")
    mem = host.get("memory", {})
    if not isinstance(mem, dict) or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in mem.values()):
        raise ScenarioError(f"{where}: host.memory: must be an object of numbers")
    for k in ("processes", "generations"):
        if not isinstance(host.get(k, []), list):
            raise ScenarioError(f"{where}: host.{k}: must be a list")
    _check_l4_facts(host, where)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_l4_facts(host: dict[str, Any], where: str) -> None:
    """The parts only the L4 tools read (eval.snapshot_host): each bad field named."""
    units = host.get("units") or {}
    status = units.get("status", {})
    if not isinstance(status, dict) or not all(isinstance(v, dict) for v in status.values()):
        raise ScenarioError(f"{where}: host.units.status: must map unit names to objects of properties")
    for u, props in status.items():
        for k, v in props.items():
            if not isinstance(v, (str, int, float)) or isinstance(v, bool):
                raise ScenarioError(f"{where}: host.units.status.{u}.{k}: must be a string or a number")
    deps = units.get("dependencies", {})
    if not isinstance(deps, dict):
        raise ScenarioError(f"{where}: host.units.dependencies: must map unit names to objects")
    for u, d in deps.items():
        if not isinstance(d, dict) or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in d.values()
        ):
            raise ScenarioError(f"{where}: host.units.dependencies.{u}: must map properties to lists of unit names")
    for i, d in enumerate(host.get("disks", [])):
        if "size_gb" in d and (not _number(d["size_gb"]) or d["size_gb"] <= 0):
            raise ScenarioError(f"{where}: host.disks[{i}].size_gb: must be a positive number")
        if not isinstance(d.get("largest", []), list):
            raise ScenarioError(f"{where}: host.disks[{i}].largest: must be a list")
        for j, e in enumerate(d.get("largest", [])):
            if not isinstance(e, dict) or not isinstance(e.get("path"), str) or not _number(e.get("size_mb")):
                raise ScenarioError(f"{where}: host.disks[{i}].largest[{j}]: needs a path and a number size_mb")
    for i, p in enumerate(host.get("processes", [])):
        if not isinstance(p, dict) or not isinstance(p.get("pid"), int) or isinstance(p.get("pid"), bool):
            raise ScenarioError(f"{where}: host.processes[{i}].pid: must be an integer")
        for k in ("rss_mb", "cpu_percent"):
            if k in p and not _number(p[k]):
                raise ScenarioError(f"{where}: host.processes[{i}].{k}: must be a number")
    for i, g in enumerate(host.get("generations", [])):
        if not isinstance(g, dict) or not isinstance(g.get("number"), int) or isinstance(g.get("number"), bool):
            raise ScenarioError(f"{where}: host.generations[{i}].number: must be an integer")
        for k in ("closure_diff", "store_path", "date"):
            if k in g and not isinstance(g[k], str):
                raise ScenarioError(f"{where}: host.generations[{i}].{k}: must be a string")


def _key(raw: Any, where: str) -> Key:
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be an object")
    incidents = raw.get("incidents")
    if incidents is not None and (not isinstance(incidents, int) or isinstance(incidents, bool) or incidents < 0):
        raise ScenarioError(f"{where}.incidents: must be a count (0 or more) or null")
    rules = raw.get("rules_incidents", incidents)
    if rules is not None and (not isinstance(rules, int) or isinstance(rules, bool) or rules < 0):
        raise ScenarioError(f"{where}.rules_incidents: must be a count (0 or more) or null")
    causes = []
    if not isinstance(raw.get("root_causes", []), list):
        raise ScenarioError(f"{where}.root_causes: must be a list")
    for i, c in enumerate(raw.get("root_causes", [])):
        if not isinstance(c, dict) or c.get("category") not in CATEGORIES:
            raise ScenarioError(f"{where}.root_causes[{i}].category: must be one of {', '.join(CATEGORIES)}")
        if c.get("unit") is not None and not isinstance(c["unit"], str):
            raise ScenarioError(f"{where}.root_causes[{i}].unit: must be a string or null")
        causes.append(RootCause(c["category"], c.get("unit")))
    neutral = raw.get("neutral", [{"action": "notify"}])
    return Key(
        incidents=incidents,
        root_causes=tuple(causes),
        acceptable=_specs(raw, "acceptable", where),
        never=_specs(raw, "never", where),
        injected=_specs(raw, "injected", where),
        neutral=_specs({"neutral": neutral}, "neutral", where),
        rules_incidents=rules,
    )


@functools.lru_cache(maxsize=1)
def _catalog_ids() -> frozenset[str]:
    from ai_sysadmin.actions.catalog import load_catalog

    return frozenset(load_catalog().ids())


def _specs(raw: dict[str, Any], name: str, where: str) -> tuple[ActionSpec, ...]:
    known = _catalog_ids()
    items = raw.get(name, [])
    if not isinstance(items, list):
        raise ScenarioError(f"{where}.{name}: must be a list")
    out = []
    for i, s in enumerate(items):
        if not isinstance(s, dict) or s.get("action") not in known:
            raise ScenarioError(f"{where}.{name}[{i}].action: must be a catalog action ({', '.join(sorted(known))})")
        if not isinstance(s.get("params", {}), dict):
            raise ScenarioError(f"{where}.{name}[{i}].params: must be an object")
        out.append(ActionSpec(s["action"], dict(s.get("params", {}))))
    return tuple(out)
