"""L1: entries in, triggers out.  Synchronous and allocation-light: it runs once per log line.

Per entry: template (drain3) -> signature rules -> cached model answer or a request to
the trigger model -> burst check -> dedup window.  `checkpoint()` hands out, per
trigger, the occurrences since the previous checkpoint together with the cursor of the
last entry processed; the sink stores both in one transaction and adds the counts.
After a crash the entries past the stored cursor are read again and counted once.

While entries of a template wait for the model's first answer, checkpoints are held
back (at most `max_hold` seconds): the cursor must not pass entries whose trigger does
not exist yet.  A down model answers at once with an error, so this costs latency only
while the model is actually thinking.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

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


@dataclass
class Checkpoint:
    triggers: list[Trigger]  # deltas: count = occurrences since the previous checkpoint
    cursor: str | None  # of the last entry these cover (None: none read yet)


class Pipeline:
    def __init__(self, templates: Templates, rules: RuleSet, *, window_seconds: int = 300,
                 classifier: Classifier | None = None, burst: BurstDetector | None = None,
                 model_min_severity: str = "medium", start_cursor: str | None = None,
                 decision_hook: DecisionHook | None = None, max_held: int = 1000, max_hold: float = 10.0,
                 clock: Callable[[], float] = time.monotonic):
        self.templates = templates
        self.rules = rules
        self.windows = Windows(window_seconds, templates.template)
        self.classifier = classifier
        self.burst = burst
        self.model_min_rank = SEVERITY_RANK[model_min_severity]
        self.stats = Stats()
        self.decision_hook = decision_hook
        self.max_held = max_held
        self.max_hold = max_hold
        self._clock = clock
        self._seq = 0
        self._last_cursor = start_cursor
        self._window: int | None = None
        self._held: dict[str, dict[tuple[str | None, int], _Held]] = {}
        self._held_since: float | None = None
        self._unit_ids: dict[str | None, str] = {}
        if classifier is not None:
            classifier.on_answer = self._on_answer

    @property
    def degraded(self) -> bool:
        return bool(self.classifier and self.classifier.degraded)

    # ------------------------------------------------------------------ per entry

    def process(self, entry: Entry) -> int:
        self._seq += 1
        self.stats.entries += 1
        w = self.windows.index(entry.realtime_usec)
        self._window = w
        key = shape_key(entry.message)
        m = self.templates.match(entry.message, key)
        if m.is_new:
            self.stats.novel_templates += 1
        flags = 0
        rule = self.rules.match(entry, key)
        if rule is not None:
            flags |= HIT_RULE
            self.stats.rule_hits += 1
            self.windows.add(entry, window=w, source=rule.source, severity=rule.severity, category=rule.category,
                             summary=rule.summary, template_id=m.template_id, cluster_id=m.cluster_id,
                             min_count=rule.min_count)
        elif self.classifier is not None:
            flags |= self._model_path(entry, w, m.template_id, m.cluster_id)
        if self.burst is not None:
            flags |= self._burst_path(entry, w, m.template_id, m.cluster_id, rule)
        self._last_cursor = entry.cursor if entry.cursor is not None else self._last_cursor
        return flags

    def bad_line(self) -> None:
        self.stats.bad_lines += 1

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
            self.stats.model_requests += 1
        if self._held_since is None:
            self._held_since = self._clock()
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

    def _add_model(self, entry: Entry, w: int, tid: str, cluster_id: int, answer: Answer, *, count: int = 1,
                   sample: bool = True) -> None:
        self.windows.add(entry, window=w, source="model", severity=answer.severity, category=answer.category,
                         summary=answer.summary, template_id=tid, cluster_id=cluster_id, count=count, sample=sample)

    def _on_answer(self, tid: str, answer: Answer | None) -> None:
        """The model answered (or failed) for `tid`: turn held entries into triggers, or let them go."""
        held = self._held.pop(tid, {})
        if not self._held:
            self._held_since = None
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
            self.windows.add(entry, window=w, source="burst", severity="medium",
                             category=rule.category if rule is not None else "other",
                             summary="Log rate far above its recent rate", template_id=tid, cluster_id=cluster_id,
                             count=max(state, 1))
        if unit is not None and (state := self.burst.observe(("unit", unit), w)):
            uid = self._unit_ids.get(unit)
            if uid is None:
                uid = self._unit_ids[unit] = hash_template(f"unit-rate:{unit}")
            self.windows.add(entry, window=w, source="burst", severity="medium", category="resource",
                             summary=f"{unit} logs far above its recent rate", template_id=uid, cluster_id=-1,
                             count=max(state, 1), template=f"log rate of {unit}")
            flags |= HIT_BURST
        if flags:
            self.stats.burst_hits += 1
        return flags

    # ------------------------------------------------------------------ checkpoints

    def holding(self) -> bool:
        """True while a checkpoint must wait for the model (entries held, not for too long)."""
        if self._held_since is None:
            return False
        if self._clock() - self._held_since <= self.max_hold:
            return True
        # The model is slow or over budget: stop holding the cursor.  The held entries still
        # become triggers when the answer comes; only a crash before that would lose them.
        log.warning("trigger model answer pending for more than %.0fs; checkpointing past %d held template(s)",
                    self.max_hold, len(self._held))
        self._held_since = self._clock()
        return False

    def checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Persist miner state and model answers, then hand out deltas and their cursor.

        None while entries wait for the model (see `holding`).  The miner state is saved
        *before* the cursor can advance, so it is never behind the cursor: entries read
        again after a crash map to the same templates and so to the same trigger ids.
        """
        if not force and self.holding():
            return None
        self.templates.save()
        if self.classifier is not None:
            self.classifier.cache.save()
        return Checkpoint(self.windows.take_deltas(), self._last_cursor)

    def committed(self, cp: Checkpoint) -> None:
        """The sink durably recorded `cp`: forget triggers of windows no entry can reach."""
        if self._window is None:
            return
        oldest = min([self._window] + [h.window for held in self._held.values() for h in held.values()])
        self.windows.retire_before(oldest)

    def failed(self, cp: Checkpoint) -> None:
        """The sink could not record `cp`: its deltas go out again with the next checkpoint."""
        self.windows.give_back(cp.triggers)

    def totals(self) -> list[Trigger]:
        return self.windows.totals()
