"""Deterministic correlation: triggers in, incidents (one per problem) out.  No model, no I/O.

A trigger joins an existing incident when an admin would draw the link:

1. *cause and effect* -- a unit that fails or crashes after an OOM kill that named it
   (cgroup path or process name), or whose failure says `oom-kill`; a unit that logged
   ENOSPC, or whose failure says "No space left", while a disk-full incident is open;
2. *same unit* -- any trigger about a systemd unit already in the incident (repeated
   failures of one unit, its crash loop, its segfaults);
3. *same process, same disk* -- what trusted senders name exactly: a kernel
   `comm[pid]: segfault` line and systemd-coredump's dump of that pid (`Process pid
   (comm)`, COREDUMP_PID) are one crash; I/O errors on a disk, filesystem errors on its
   partitions and tasks hung on them (`EXT4-fs error (device sda1)`, `jbd2/sda1-8`) are
   one disk problem;
4. *the switch's own list* -- `nixos-rebuild switch` names the units it broke ("the
   following units failed: ...", from its own system unit); those failures are the
   switch's effects, also when they were logged before the list;
5. *one transaction* -- PID 1's "Dependency failed for X" (JOB_RESULT=dependency) is the
   effect of the failure logged just before it;
6. *same category* -- for host-wide problems (disk, memory, kernel, hardware, time,
   network, nix, certificates, auth, ...) within `incident_window`; per-unit categories
   (unit-failure, crash) join by category only when no unit is named on either side,
   so two unrelated units failing are two incidents.

Every rule above links triggers of one host only: an incident belongs to the host whose
journal it came from (`Incident.host`), and a unit, a pid or a disk of host A says
nothing about host B.  The one link across hosts:

7. *fleet* -- a trigger that joins nothing on its own host, whose rule (or, for what the
   trigger model classified and for bursts, whose template) fired on the same unit of
   another host within `fleet_window`, joins that host's open incident, which becomes a
   fleet incident listing both hosts (a bad deploy, an upstream outage, a shared
   certificate expiring: one problem, not one incident per host).

Otherwise it opens a new incident.  All windows are measured on trigger times (the
journal's clock), so a replay gives the same incidents as the live run did.

Severity is the worst of the incident's triggers, except that a `model` trigger counts
at most `medium`: the trigger model's opinion alone never makes an incident urgent.
Category and title come from the primary trigger: rule/threshold evidence before model
evidence, causes (oom, disk-full, ...) before effects (unit-failure, crash), then
severity, then the earliest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ai_sysadmin.config import ReviewConfig
from ai_sysadmin.trigger.entry import COREDUMP, KERNEL, PID1, TRUSTED_SENDERS
from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger

SYSTEMD_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|mount|automount|path|slice|scope|swap)$")
PER_UNIT_CATEGORIES = frozenset({"crash", "unit-failure", "other"})
# Restarting a unit whose failure one of these caused only fails again (a crash causes its unit's failure).
CAUSE_CATEGORIES = frozenset({"oom", "disk-full", "crash", "nix", "filesystem", "hardware"})
# Among causes, a failing disk explains the filesystem errors and hung tasks on it; `other`
# (a line at priority crit that no signature names) explains nothing a named category does.
_CAUSE_RANK = {"hardware": 3, "other": -1}
EFFECT_CATEGORIES = frozenset({"crash", "unit-failure"})
MODEL_CAP = "medium"  # the highest severity model-only evidence may give an incident
ACTIVE = ("open", "acknowledged")
MAX_TRIGGERS_KEPT = 500  # evidence kept per incident in memory; the database keeps all links

_MEMCG = re.compile(r"(?:task_memcg|oom_memcg)=\S*?/([A-Za-z0-9:_.\\@-]+\.(?:service|scope))")
_KILLED = re.compile(
    r"Kill(?:ed)? process \d+ \(([^)\s]+)\)|\b([A-Za-z0-9_.-]{2,})\[\d+\]: segfault|"
    r"Process \d+ \(([^)\s]+)\) of user"
)
_OOM_RESULT = re.compile(r"oom-kill|OOM killer", re.IGNORECASE)
_ENOSPC = re.compile(r"No space left on device|ENOSPC|Disk quota exceeded", re.IGNORECASE)
# A crashed process's pid, as the kernel (`comm[pid]: segfault`, `traps: comm[pid]`) and
# systemd-coredump (`Process pid (comm) of user`) write it.
_CRASH_PID = re.compile(
    r"\b[^\s\[\]]{1,64}\[(\d+)\]: (?:segfault|general protection|trap)|traps: \S+\[(\d+)\]|"
    r"Process (\d+) \([^)]*\) of user"
)
# Block devices in kernel storage lines: `dev sda`, `(device sda1)`, `EXT4-fs (sda1)`, `[sda]`, `jbd2/sda1-8`.
_DEVICE = re.compile(
    r"\bdev (\w+)|\(device (\w+)\)|-fs \((\w+)\)|XFS \((\w+)\)|\[(sd[a-z]+|vd[a-z]+)\]|"
    r"jbd2/(\w+?)-\d+"
)
_WHOLE_DISK = re.compile(r"^(?:((?:sd|vd|xvd|hd)[a-z]+)\d*|((?:nvme\d+n\d+|mmcblk\d+))(?:p\d+)?)$")
# The units `switch-to-configuration` reports broken, from the unit nixos-rebuild runs it in.
_SWITCH_FAILED = re.compile(r"the following units failed: ([^\n]+)")
SWITCH_UNITS = frozenset({"nixos-rebuild-switch-to-configuration.service", "nixos-upgrade.service"})
DEVICE_CATEGORIES = frozenset({"hardware", "filesystem", "kernel"})


def systemd_unit(name: str | None) -> str | None:
    """`name` when it is a systemd unit; L1 falls back to identifiers (`kernel`, `sshd`) otherwise."""
    return name if name and SYSTEMD_UNIT.match(name) else None


def effective_rank(severity: str, source: str) -> int:
    rank = SEVERITY_RANK[severity]
    return min(rank, SEVERITY_RANK[MODEL_CAP]) if source == "model" else rank


def _stem(unit: str) -> str:
    return unit.rsplit(".", 1)[0].split("@", 1)[0].lower()


@dataclass
class Evidence:
    """What the correlator keeps of a trigger (bounded, no raw floods)."""

    id: str
    severity: str
    category: str
    source: str
    unit: str | None
    summary: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    proven: bool = False  # measured (a threshold) or from a sender the trusted fields prove (trigger/entry.py)
    dependent: bool = False  # PID 1: the unit's job failed because a dependency failed (it will fail again)
    subject: str | None = None  # what a threshold measured (a mount point for the disk thresholds)
    host: str = ""  # whose journal (or metrics) it came from; "" when the correlator is told no host
    signature: str = ""  # what fired (rule, or template), on which unit: the same fault on another host

    @classmethod
    def of(cls, t: Trigger, host: str = "") -> Evidence:
        subject = t.fields.get("subject") if t.source.startswith("threshold:") else None
        return cls(
            t.id,
            t.severity,
            t.category,
            t.source,
            t.unit,
            t.summary or t.template,
            t.first_seen,
            t.last_seen,
            t.count,
            proven(t),
            dependent(t),
            subject if isinstance(subject, str) else None,
            host,
            signature(t),
        )

    @property
    def model_only(self) -> bool:
        return self.source == "model"

    def primary_key(self) -> tuple[Any, ...]:
        cause = (
            _CAUSE_RANK.get(self.category, 2)
            if self.category not in EFFECT_CATEGORIES
            else (1 if self.category == "crash" else 0)
        )
        return (
            not self.model_only,
            cause,
            effective_rank(self.severity, self.source),
            -self.first_seen.timestamp(),
            self.id,
        )


@dataclass
class Incident:
    key: int  # the correlator's own handle; `id` is the stored id (None until persisted)
    status: str
    category: str
    severity: str
    title: str
    first_seen: datetime
    last_seen: datetime
    id: int | None = None
    units: set[str] = field(default_factory=set)  # systemd units the triggers are about
    victims: set[str] = field(default_factory=set)  # units / process names a cause trigger named
    pids: set[str] = field(default_factory=set)  # crashed processes a trusted sender named
    disks: set[str] = field(default_factory=set)  # whole disks (sda, nvme0n1) the kernel named
    evidence: dict[str, Evidence] = field(default_factory=dict)
    trigger_count: int = 0  # distinct triggers ever linked (evidence keeps at most MAX_TRIGGERS_KEPT)
    resolved_at: datetime | None = None
    resolved_reason: str | None = None
    reopened: int = 0
    acknowledged: bool = False
    host: str = ""  # the host it was first seen on (fixed when it opens)
    hosts: dict[str, datetime] = field(default_factory=dict)  # every host it was seen on -> first seen there

    @property
    def fleet(self) -> bool:
        """Seen on more than one host: one fleet incident (rule 7)."""
        return len(self.hosts) > 1

    @property
    def host_list(self) -> list[str]:
        """Its hosts, in the order the fault reached them."""
        return sorted(self.hosts, key=lambda h: (self.hosts[h], h)) or [self.host]

    @property
    def confidence(self) -> str:
        return "low" if all(e.model_only for e in self.evidence.values()) else "normal"

    @property
    def trigger_ids(self) -> list[str]:
        return sorted(self.evidence, key=lambda i: (self.evidence[i].first_seen, i))

    @property
    def categories(self) -> set[str]:
        """Every category the evidence has: a disk incident that holds filesystem errors is about the filesystem too."""
        return {e.category for e in self.evidence.values()} | {self.category}

    @property
    def all_units(self) -> set[str]:
        return self.units | {v for v in self.victims if systemd_unit(v)}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "category": self.category,
            "severity": self.severity,
            "title": self.title,
            "units": sorted(self.units),
            "confidence": self.confidence,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "trigger_ids": self.trigger_ids,
            "reopened": self.reopened,
            "resolved_reason": self.resolved_reason,
            # A hub's incident names its host, a fleet incident its hosts; one host's is as it was.
            **({"host": self.host} if self.host else {}),
            **({"hosts": self.host_list} if self.fleet else {}),
        }


@dataclass(frozen=True)
class UnitView:
    """Unit health as the collector last saw it."""

    available: bool
    failed: frozenset[str] = frozenset()
    reason: str = ""

    def healthy(self, units: Iterable[str]) -> bool:
        return self.available and not (set(units) & self.failed)


@dataclass(frozen=True)
class Change:
    incident: Incident
    kind: str  # opened | updated | reopened | resolved | closed


def _healthy(inc: Incident, involved: list[str], units: UnitView | Mapping[str, UnitView]) -> bool:
    if isinstance(units, UnitView):
        return units.healthy(involved)
    unknown = UnitView(False, reason="no unit state of this host")
    return all(units.get(h, unknown).healthy(involved) for h in inc.host_list)


def one_host(t: Trigger) -> str:
    """Every trigger is this host's (a standalone host; "" is the store's local host)."""
    return ""


def trigger_host(t: Trigger) -> str:
    """The host the trigger names (a hub: its member's L1 pipeline sets it); "" when none."""
    return t.host or ""


class Correlator:
    def __init__(self, cfg: ReviewConfig, host_of: Callable[[Trigger], str] = one_host):
        """`host_of`: the host a trigger belongs to (incidents/tracker.py decides it from the fleet role)."""
        self.cfg = cfg
        self.host_of = host_of
        self.incidents: dict[int, Incident] = {}  # open, acknowledged, resolved-within-reopen-window
        self._by_trigger: dict[str, int] = {}
        self._next_key = 1

    # ------------------------------------------------------------------ input

    def add(self, triggers: Iterable[Trigger]) -> list[Change]:
        changes: dict[int, str] = {}
        for t in sorted(triggers, key=lambda t: (t.first_seen, t.id)):
            inc, kind = self._place(t)
            if changes.get(inc.key) not in ("opened", "reopened"):
                changes[inc.key] = kind
        return [Change(self.incidents[k], kind) for k, kind in changes.items() if k in self.incidents]

    def restore(self, inc: Incident) -> None:
        """Take back an incident loaded from the store (service start)."""
        self.incidents[inc.key] = inc
        self._next_key = max(self._next_key, inc.key + 1)
        for tid in inc.evidence:
            self._by_trigger[tid] = inc.key

    def evidence(self, t: Trigger) -> Evidence:
        return Evidence.of(t, self.host_of(t))

    def _place(self, t: Trigger) -> tuple[Incident, str]:
        ev = self.evidence(t)
        known = self._by_trigger.get(t.id)
        if known is not None and known in self.incidents:
            inc = self.incidents[known]
            old = inc.evidence.get(t.id)
            if old is not None:
                ev.count += old.count
                ev.first_seen = min(ev.first_seen, old.first_seen)
            return inc, self._attach(inc, ev, t)
        match, causal = self._match(t, ev.host)
        if match is None:
            match = self._fleet_match(t, ev)
        if (
            match is not None
            and causal
            and t.category in EFFECT_CATEGORIES
            and not dependent(t)
            and systemd_unit(t.unit)
        ):
            match.victims.add(t.unit)  # type: ignore[arg-type]  # the effect names its unit: act on that one
        if match is None:
            inc = Incident(
                key=self._next_key,
                status="open",
                category=t.category,
                severity=t.severity,
                title="",
                first_seen=t.first_seen,
                last_seen=t.last_seen,
                host=ev.host,
            )
            self._next_key += 1
            self.incidents[inc.key] = inc
            self._attach(inc, ev, t)
            return inc, "opened"
        return match, self._attach(match, ev, t)

    def _attach(self, inc: Incident, ev: Evidence, t: Trigger) -> str:
        kind = "updated"
        if inc.status in ("resolved", "closed"):
            inc.status = "acknowledged" if inc.acknowledged else "open"
            inc.resolved_at = None
            inc.resolved_reason = None
            inc.reopened += 1
            kind = "reopened"
        if ev.id not in inc.evidence:
            inc.trigger_count += 1
        if ev.id in inc.evidence or len(inc.evidence) < MAX_TRIGGERS_KEPT:
            inc.evidence[ev.id] = ev
        self._by_trigger[ev.id] = inc.key
        seen = inc.hosts.get(ev.host)
        inc.hosts[ev.host] = ev.first_seen if seen is None else min(seen, ev.first_seen)
        inc.first_seen = min(inc.first_seen, ev.first_seen)
        inc.last_seen = max(inc.last_seen, ev.last_seen)
        unit = systemd_unit(t.unit)
        if unit:
            inc.units.add(unit)
        if t.category in CAUSE_CATEGORIES:
            inc.victims |= _victims(t)
        inc.pids |= crash_pids(t)
        inc.disks |= disks_of(t)
        self._derive(inc)
        return kind

    def _derive(self, inc: Incident) -> None:
        """Severity, category and title from the evidence: the same evidence, the same answer."""
        evs = list(inc.evidence.values())
        primary = max(evs, key=Evidence.primary_key)
        rank = max(effective_rank(e.severity, e.source) for e in evs)
        inc.severity = next(s for s, r in SEVERITY_RANK.items() if r == rank)
        inc.category = primary.category
        unit = systemd_unit(primary.unit) or (sorted(inc.all_units)[0] if inc.all_units else None)
        others = len(inc.all_units - {unit}) if unit else 0
        title = primary.summary.strip().rstrip(".")[:120]
        if unit:
            title += f" ({unit}{f' and {others} more unit(s)' if others else ''})"
        inc.title = title

    def _match(self, t: Trigger, host: str) -> tuple[Incident | None, bool]:
        """The incident of `host` that `t` joins (None: a new one), and whether the link is cause and effect."""
        unit = systemd_unit(t.unit)
        window = timedelta(seconds=self.cfg.incident_window)
        causal = timedelta(seconds=self.cfg.causal_window)
        reopen = timedelta(seconds=self.cfg.reopen_window)
        text = " ".join([t.template, *t.sample, str(t.fields.get("unit_result", ""))])
        pids, disks, named_by_t = crash_pids(t), disks_of(t), _victims(t) if t.category in CAUSE_CATEGORIES else set()
        after_failure = dependent(t)
        best: tuple[int, float, Incident] | None = None
        for inc in self.incidents.values():
            if host not in inc.hosts:
                continue  # another host's units, pids and disks are not this one's
            if inc.status in ACTIVE:
                near = t.first_seen <= inc.last_seen + window
            elif inc.status == "resolved" and inc.resolved_at is not None:
                near = t.first_seen <= inc.resolved_at + reopen
            else:
                near = False
            if not near:
                continue
            score = 0
            if (
                t.category in EFFECT_CATEGORIES
                and inc.category in CAUSE_CATEGORIES
                and t.category != inc.category
                and t.first_seen <= inc.last_seen + causal
            ):
                named = unit is not None and _names(inc.victims, unit)
                said = (inc.category == "oom" and _OOM_RESULT.search(text)) or (
                    inc.category == "disk-full" and _ENOSPC.search(text)
                )
                blind = inc.category == "oom" and not inc.victims and t.first_seen <= inc.first_seen + causal
                if named or said or blind:
                    score = 3
            if not score and (pids & inc.pids or disks & inc.disks):
                score = 3  # the same crashed process, the same disk: named exactly by trusted senders
            if (
                not score
                and t.category in CAUSE_CATEGORIES
                and inc.category in EFFECT_CATEGORIES
                and any(_names(named_by_t, u) for u in inc.units)
            ):
                score = 3  # a cause logged after its effects (the switch's list of the units it broke)
            if (
                not score
                and after_failure
                and inc.status in ACTIVE
                and inc.units
                and t.first_seen <= inc.last_seen + causal
            ):
                score = 3  # PID 1's dependency failure: the effect of the failure just before it
            if not score and unit and unit in inc.all_units:
                score = 2
            if (
                not score
                and t.category in inc.categories
                and (t.category not in PER_UNIT_CATEGORIES or (unit is None and not inc.units))
            ):
                score = 1
            if score and (best is None or (score, inc.last_seen.timestamp()) > best[:2]):
                best = (score, inc.last_seen.timestamp(), inc)
        return (best[2], best[0] == 3) if best else (None, False)

    def _fleet_match(self, t: Trigger, ev: Evidence) -> Incident | None:
        """The open incident in which the same rule (or template) fired on the same unit of another
        host within `fleet_window` of `t` (rule 7); of several, the one that fired nearest in time."""
        window = self.cfg.fleet_window
        best: tuple[float, float, Incident] | None = None
        for inc in self.incidents.values():
            if inc.status not in ACTIVE:
                continue
            gaps = [
                max((e.first_seen - t.first_seen).total_seconds(), (t.first_seen - e.last_seen).total_seconds(), 0.0)
                for e in inc.evidence.values()
                if e.signature == ev.signature and e.host != ev.host
            ]
            gap = min(gaps, default=window + 1)
            if gap <= window and (best is None or (gap, -inc.last_seen.timestamp()) < best[:2]):
                best = (gap, -inc.last_seen.timestamp(), inc)
        return best[2] if best else None

    # ------------------------------------------------------------------ lifecycle

    def tick(self, now: datetime, units: UnitView | Mapping[str, UnitView]) -> list[Change]:
        """Self-resolve quiet incidents whose units are healthy; close old resolved ones.

        `units`: one view for every incident (one host), or host -> view: an incident's units
        must be healthy on each host it reached, and a host without a view is unknown."""
        out: list[Change] = []
        quiet = timedelta(seconds=self.cfg.quiet_seconds)
        for inc in list(self.incidents.values()):
            if inc.status in ACTIVE and now - inc.last_seen >= quiet:
                involved = sorted(inc.all_units)
                if not involved:
                    reason = f"no new triggers for {self.cfg.quiet_seconds:g}s"
                elif _healthy(inc, involved, units):
                    reason = (
                        f"no new triggers for {self.cfg.quiet_seconds:g}s and {', '.join(involved)} no longer failed"
                    )
                else:
                    continue  # failed, or no unit state to confirm: stays open
                inc.status, inc.resolved_at, inc.resolved_reason = "resolved", now, reason
                out.append(Change(inc, "resolved"))
            elif (
                inc.status == "resolved"
                and inc.resolved_at is not None
                and now - inc.resolved_at >= timedelta(seconds=self.cfg.reopen_window)
            ):
                inc.status = "closed"
                self._forget(inc)
                out.append(Change(inc, "closed"))
        return out

    def set_status(self, key: int, status: str) -> None:
        """A person acknowledged / resolved / closed it (CLI, API)."""
        inc = self.incidents.get(key)
        if inc is None:
            return
        inc.acknowledged = inc.acknowledged or status == "acknowledged"
        inc.status = status
        if status == "closed":
            self._forget(inc)

    def _forget(self, inc: Incident) -> None:
        self.incidents.pop(inc.key, None)
        for tid in inc.evidence:
            if self._by_trigger.get(tid) == inc.key:
                del self._by_trigger[tid]

    def active(self) -> list[Incident]:
        return sorted(
            (i for i in self.incidents.values() if i.status in ACTIVE),
            key=lambda i: (-SEVERITY_RANK[i.severity], i.first_seen, i.key),
        )

    def by_id(self, incident_id: int) -> Incident | None:
        return next((i for i in self.incidents.values() if i.id == incident_id), None)


def signature(t: Trigger) -> str:
    """What fired, on what: the rule or threshold (its id is in `source`), or for model-classified
    templates and bursts the template; and the unit.  Equal on two hosts: the same fault."""
    what = t.source if t.source.startswith(("rule:", "threshold:")) else f"{t.source}:{t.template_id}"
    return f"{what}|{t.unit or ''}"


def proven(t: Trigger) -> bool:
    """Whether what `t` says is vouched for: the collector measured it, or a trusted sender said it.

    Any local user can write "No space left on device"; only the kernel, PID 1,
    systemd-coredump and the metric collector cannot be impersonated.
    """
    return t.source.startswith("threshold:") or t.fields.get("sender") in TRUSTED_SENDERS


def dependent(t: Trigger) -> bool:
    """PID 1 says the unit's job failed because a unit it requires failed (JOB_RESULT=dependency)."""
    return t.fields.get("sender") == PID1 and t.fields.get("job_result") == "dependency"


def crash_pids(t: Trigger) -> set[str]:
    """Pids of crashed processes that the kernel or systemd-coredump named (COREDUMP_PID included)."""
    sender = t.fields.get("sender")
    if t.category != "crash" or sender not in (KERNEL, COREDUMP):
        return set()
    out = {g for line in (t.template, *t.sample) for m in _CRASH_PID.finditer(line) for g in m.groups() if g}
    if sender == COREDUMP and str(t.fields.get("coredump_pid", "")).isdigit():
        out.add(str(t.fields["coredump_pid"]))
    return out


def disks_of(t: Trigger) -> set[str]:
    """Whole disks named by the kernel's storage lines (a partition counts as its disk)."""
    if t.category not in DEVICE_CATEGORIES or t.fields.get("sender") != KERNEL:
        return set()
    out = set()
    for line in (t.template, *t.sample):
        for m in _DEVICE.finditer(line):
            dev = next(g for g in m.groups() if g)
            whole = _WHOLE_DISK.match(dev)
            if whole:
                out.add(whole.group(1) or whole.group(2))
    return out


def _victims(t: Trigger) -> set[str]:
    """What a cause trigger names as its victims.

    Names parsed from message text (an OOM kill's cgroup or process, a segfault, a core
    dump) count only when the trusted fields proved the sender is the kernel, PID 1 or
    systemd-coredump (trigger/entry.py): anyone else can write those words.
    """
    out: set[str] = set()
    lines = [t.template, *t.sample] if t.fields.get("sender") in TRUSTED_SENDERS else []
    for line in lines:
        out.update(m.group(1) for m in _MEMCG.finditer(line))
        for m in _KILLED.finditer(line):
            out.update(g for g in m.groups() if g and g != "<*>")
    unit = systemd_unit(t.unit)
    if unit and t.category == "disk-full":
        out.add(unit)  # a unit that logged ENOSPC: its failure is this incident's effect
    if t.category == "nix" and unit in SWITCH_UNITS:
        # journald vouches for the cgroup: only the switch itself logs from its system unit.
        for line in (t.template, *t.sample):
            for m in _SWITCH_FAILED.finditer(line):
                out.update(u for u in re.split(r"[\s,]+", m.group(1)) if systemd_unit(u))
    return out


def _names(victims: set[str], unit: str) -> bool:
    """True when a victim is this unit, or the process name the unit runs (postgres ~ postgresql)."""
    if unit in victims:
        return True
    stem = _stem(unit)
    for v in victims:
        v = v.lower()
        if len(v) >= 3 and len(stem) >= 3 and (stem.startswith(v) or v.startswith(stem)):
            return True
    return False
