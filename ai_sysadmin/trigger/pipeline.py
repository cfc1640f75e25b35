"""L1: entries in, triggers out.  Synchronous and allocation-light: it runs once per log line.

Per entry: template (drain3) -> signature rules -> cached model answer or a request to
the trigger model -> burst check -> dedup window.  `checkpoint()` hands out, per
trigger, the occurrences since the previous checkpoint together with the cursor of the
last entry processed; the sink stores both in one transaction and adds the counts.
After a crash the entries past the stored cursor are read again and counted once.

What the entries past the cursor cannot rebuild travels with each checkpoint as its
`state` (the caller keeps it durably, keyed by the checkpoint number stored with the
cursor): entries held for the model's first answer on their template, open triggers of
min-count rules, and the burst detector's rates.  So the cursor never waits for the
model, and a kill -9 at any moment restarts exactly where one uninterrupted run would be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ai_sysadmin.trigger.burst import BurstDetector
from ai_sysadmin.trigger.classifier import Answer, Classifier, Request
from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger
from ai_sysadmin.trigger.model import template_id as hash_template
from ai_sysadmin.trigger.rules import Rule, RuleSet, looks_like_error, shape_key
from ai_sysadmin.trigger.templates import Templates
from ai_sysadmin.trigger.window import Windows

log = logging.getLogger(__name__)

# process() result flags: which paths this entry fed (a pending model answer reports later).
HIT_RULE, HIT_MODEL, HIT_BURST, PENDING_MODEL = 1, 2, 4, 8

DecisionHook = Callable[[list[int], int], None]  # (entry sequence numbers, flag) for late decisions


@dataclass
class Stats:
    entries: int = 0
    bad_lines: int = 0
    novel_templates: int = 0
    rule_hits: int = 0
    model_hits: int = 0
    burst_hits: int = 0
    model_requests: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Held:
    """Entries of one (template, unit, window) waiting for the model's first answer."""

    window: int
    cluster_id: int
    entries: list[Entry] = field(default_factory=list)
    count: int = 0
    last: Entry | None = None
    seqs: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "cluster_id": self.cluster_id,
            "count": self.count,
            "entries": [asdict(e) for e in self.entries],
            "last": asdict(self.last) if self.last else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _Held:
        return cls(
            int(data["window"]),
            int(data["cluster_id"]),
            [Entry(**e) for e in data["entries"]],
            int(data["count"]),
            Entry(**data["last"]) if data.get("last") else None,
        )


@dataclass
class Checkpoint:
    triggers: list[Trigger]  # deltas: count = occurrences since the previous checkpoint
    cursor: str | None  # of the last entry these cover (None: none read yet)
    state: dict[str, Any] = field(default_factory=dict)  # what a restart at `cursor` needs (see module doc)
    changed: bool = False  # state changed without a new cursor (a model answer came)


STATE_VERSION = 1


class _Unmatched:
    """`process` was not given a rule result: it matches the rules itself."""


UNMATCHED = _Unmatched()


class Pipeline:
    def __init__(
        self,
        templates: Templates,
        rules: RuleSet,
        *,
        window_seconds: int = 300,
        classifier: Classifier | None = None,
        burst: BurstDetector | None = None,
        model_min_severity: str = "medium",
        start_cursor: str | None = None,
        decision_hook: DecisionHook | None = None,
        max_held: int = 1000,
        host: str | None = None,
        listen_answers: bool = True,
    ):
        """`host`: the fleet member whose journal this is (see Windows); `listen_answers=False`:
        the classifier is shared by several pipelines and its owner routes answers to `answered`."""
        self.templates = templates
        self.rules = rules
        self.windows = Windows(window_seconds, templates.template, host=host)
        self.classifier = classifier
        self.burst = burst
        self.model_min_rank = SEVERITY_RANK[model_min_severity]
        self.stats = Stats()
        self.decision_hook = decision_hook
        self.max_held = max_held
        self._seq = 0
        self._last_cursor = start_cursor
        self._window: int | None = None
        self._held: dict[str, dict[tuple[str | None, int], _Held]] = {}
        self._requests: dict[str, Request] = {}  # what was asked for each held template
        self._answered = False  # held entries resolved since the last checkpoint
        self._unit_ids: dict[str | None, str] = {}
        if classifier is not None and listen_answers:
            classifier.on_answer = self._on_answer

    @property
    def degraded(self) -> bool:
        return bool(self.classifier and self.classifier.degraded)

    @property
    def cursor(self) -> str | None:
        """The cursor of the last entry processed (where a poll of the journal goes on from)."""
        return self._last_cursor

    # ------------------------------------------------------------------ per entry

    def match_rule(self, entry: Entry) -> Rule | None:
        """The rule step alone: thread-safe, so a caller may run it off the event loop for long lines."""
        return self.rules.match(entry, shape_key(entry.message))

    def process(self, entry: Entry, rule: Rule | _Unmatched | None = UNMATCHED) -> int:
        """One entry through every path; `rule`: the result of `match_rule` when the caller already ran it."""
        self._seq += 1
        self.stats.entries += 1
        w = self.windows.index(entry.realtime_usec)
        self._window = w
        key = shape_key(entry.message)
        m = self.templates.match(entry.message, key)
        if m.is_new:
            self.stats.novel_templates += 1
        flags = 0
        if isinstance(rule, _Unmatched):
            rule = self.rules.match(entry, key)
        if rule is not None:
            flags |= HIT_RULE
            self.stats.rule_hits += 1
            self.windows.add(
                entry,
                window=w,
                source=rule.source,
                severity=rule.severity,
                category=rule.category,
                summary=rule.summary,
                template_id=m.template_id,
                cluster_id=m.cluster_id,
                min_count=rule.min_count,
            )
        elif self.classifier is not None:
            flags |= self._model_path(entry, w, m.template_id, m.cluster_id)
        if self.burst is not None:
            flags |= self._burst_path(entry, w, m.template_id, m.cluster_id, rule)
        self._last_cursor = entry.cursor if entry.cursor is not None else self._last_cursor
        return flags

    def bad_line(self) -> None:
        self.stats.bad_lines += 1

    def pass_over(self, entry: Entry) -> None:
        """An entry deliberately not processed (a repeat its sender sent twice): the cursor moves past it."""
        if entry.cursor is not None:
            self._last_cursor = entry.cursor

    def _model_path(self, entry: Entry, w: int, tid: str, cluster_id: int) -> int:
        assert self.classifier is not None
        answer = self.classifier.lookup(tid)
        if answer is not None:
            if SEVERITY_RANK[answer.severity] < self.model_min_rank:
                return 0
            self.stats.model_hits += 1
            self._add_model(entry, w, tid, cluster_id, answer)
            return HIT_MODEL
        if not self.classifier.pending(tid):
            p = entry.priority
            if not ((p is not None and p <= 4) or looks_like_error(entry.message)):
                return 0
            req = Request(tid, self.templates.template(cluster_id), entry.message, entry.source_unit, p)
            if not self.classifier.submit(req):
                return 0
            self._requests[tid] = req
            self.stats.model_requests += 1
        held = self._held.setdefault(tid, {})
        h = held.get((entry.source_unit, w))
        if h is None:
            h = held[(entry.source_unit, w)] = _Held(w, cluster_id)
        h.count += 1
        h.last = entry
        if len(h.entries) < self.windows.max_samples:
            h.entries.append(entry)
        if self.decision_hook is not None and len(h.seqs) < self.max_held:
            h.seqs.append(self._seq)
        return PENDING_MODEL

    def _add_model(
        self, entry: Entry, w: int, tid: str, cluster_id: int, answer: Answer, *, count: int = 1, sample: bool = True
    ) -> None:
        self.windows.add(
            entry,
            window=w,
            source="model",
            severity=answer.severity,
            category=answer.category,
            summary=answer.summary,
            template_id=tid,
            cluster_id=cluster_id,
            count=count,
            sample=sample,
        )

    def answered(self, tid: str, answer: Answer | None) -> None:
        """A shared classifier's answer for `tid` (see `listen_answers`)."""
        self._on_answer(tid, answer)

    def _on_answer(self, tid: str, answer: Answer | None) -> None:
        """The model answered (or failed) for `tid`: turn held entries into triggers, or let them go."""
        held = self._held.pop(tid, {})
        self._requests.pop(tid, None)
        if held:
            self._answered = True
        if answer is None or SEVERITY_RANK[answer.severity] < self.model_min_rank:
            return
        for h in held.values():
            for e in h.entries:
                self._add_model(e, h.window, tid, h.cluster_id, answer)
            rest = h.count - len(h.entries)
            if rest > 0 and h.last is not None:
                self._add_model(h.last, h.window, tid, h.cluster_id, answer, count=rest, sample=False)
            self.stats.model_hits += h.count
            if self.decision_hook is not None and h.seqs:
                self.decision_hook(h.seqs, HIT_MODEL)

    def _burst_path(self, entry: Entry, w: int, tid: str, cluster_id: int, rule: Rule | None) -> int:
        assert self.burst is not None
        unit = entry.source_unit
        flags = 0
        state = self.burst.observe((tid, unit), w)
        if state:
            flags = HIT_BURST
            self.windows.add(
                entry,
                window=w,
                source="burst",
                severity="medium",
                category=rule.category if rule is not None else "other",
                summary="Log rate far above its recent rate",
                template_id=tid,
                cluster_id=cluster_id,
                count=max(state, 1),
            )
        if unit is not None and (state := self.burst.observe(("unit", unit), w)):
            uid = self._unit_ids.get(unit)
            if uid is None:
                uid = self._unit_ids[unit] = hash_template(f"unit-rate:{unit}")
            self.windows.add(
                entry,
                window=w,
                source="burst",
                severity="medium",
                category="resource",
                summary=f"{unit} logs far above its recent rate",
                template_id=uid,
                cluster_id=-1,
                count=max(state, 1),
                template=f"log rate of {unit}",
            )
            flags |= HIT_BURST
        if flags:
            self.stats.burst_hits += 1
        return flags

    # ------------------------------------------------------------------ checkpoints

    def holding(self) -> bool:
        """True while entries wait for the model's first answer on their template (informational)."""
        return bool(self._held)

    def checkpoint(self, force: bool = False) -> Checkpoint:
        """Persist miner state and model answers, then hand out deltas, their cursor and the state.

        The miner state is saved *before* the cursor can advance, so it is never behind the
        cursor: entries read again after a crash map to the same templates and so to the
        same trigger ids.  (`force` is kept for callers; nothing waits any more.)
        """
        self.templates.save()
        if self.classifier is not None:
            self.classifier.cache.save()
        changed, self._answered = self._answered, False
        return Checkpoint(self.windows.take_deltas(), self._last_cursor, self.state(), changed)

    def state(self) -> dict[str, Any]:
        """Everything a restart at the current cursor needs that the entries after it cannot rebuild."""
        held = [
            {
                "template_id": tid,
                "unit": unit,
                "request": asdict(self._requests[tid]) if tid in self._requests else None,
                **h.to_json(),
            }
            for tid, groups in self._held.items()
            for (unit, _), h in groups.items()
        ]
        return {
            "version": STATE_VERSION,
            "cursor": self._last_cursor,
            "window": self._window,
            "generation": self.templates.generation,
            "held": held,
            "open": self.windows.carried_state(),
            "burst": self.burst.to_json() if self.burst is not None else None,
        }

    def restore(self, state: dict[str, Any]) -> bool:
        """Resume from `state` (saved with the checkpoint of the stored cursor); False if unusable."""
        if state.get("version") != STATE_VERSION or state.get("generation") != self.templates.generation:
            log.warning("L1 checkpoint state does not match this template generation; starting without it")
            return False
        self._window = state.get("window")
        self.windows.restore(state.get("open") or [])
        if self.burst is not None and state.get("burst"):
            self.burst.load_json(state["burst"])
        for item in state.get("held") or []:
            tid = item["template_id"]
            h = _Held.from_json(item)
            self._held.setdefault(tid, {})[(item.get("unit"), h.window)] = h
            if item.get("request") and tid not in self._requests:
                self._requests[tid] = Request(**item["request"])
        for tid in list(self._held):
            answer = self.classifier.lookup(tid) if self.classifier is not None else None
            if answer is not None:
                self._on_answer(tid, answer)  # answered before the crash, after the last checkpoint
            elif (
                self.classifier is None or tid not in self._requests or not self.classifier.submit(self._requests[tid])
            ):
                self._on_answer(tid, None)  # cannot ask again now: given up, as a failed answer is
        return True

    def committed(self, cp: Checkpoint) -> None:
        """The sink durably recorded `cp`: forget triggers of windows no entry can reach."""
        if self._window is None:
            return
        oldest = min([self._window] + [h.window for held in self._held.values() for h in held.values()])
        self.windows.retire_before(oldest)

    def failed(self, cp: Checkpoint) -> None:
        """The sink could not record `cp`: its deltas (and state change) go out again with the next checkpoint."""
        self.windows.give_back(cp.triggers)
        if cp.changed:
            self._answered = True

    def totals(self) -> list[Trigger]:
        return self.windows.totals()
