"""L1 as built from the configuration: the pipeline factory and the follow loop.

`build_pipeline(cfg, model)` wires templates (persisted in the state dir), rules
(built-in + config), bursts and -- when a model is given -- the classifier.

`TriggerFollower` runs the service side: resume from the sink's cursor, follow the
journal, and every `commit_interval` hand the new trigger deltas and their cursor to the
sink in one call.  The reader and the committer are separate tasks on one event loop,
so checkpoints keep coming during a backlog and while the model thinks.

Each checkpoint's state (held entries, min-count counts, burst rates) is written to a
numbered file before the sink records the cursor with that number (trigger/checkpoints.py),
so a restart resumes exactly where the stored cursor is.  A failed checkpoint (disk full
during an outage, a database error) is logged and retried; it never stops L1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_sysadmin.config import Config, TriggerConfig
from ai_sysadmin.tasks import stop_tasks
from ai_sysadmin.trigger.burst import BurstDetector
from ai_sysadmin.trigger.checkpoints import CheckpointFiles
from ai_sysadmin.trigger.classifier import AnswerCache, Classifier, StructuredModel
from ai_sysadmin.trigger.entry import BadEntry, Entry, parse_json_line
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.pipeline import Checkpoint, DecisionHook, Pipeline
from ai_sysadmin.trigger.reader import JournalSource, follow_lines
from ai_sysadmin.trigger.rules import RuleSet
from ai_sysadmin.trigger.sink import TriggerSink
from ai_sysadmin.trigger.templates import Templates

log = logging.getLogger(__name__)

YIELD_EVERY = 512  # entries between yields to the event loop while a backlog is read
# The per-line budget of the event loop: L1 yields at least this often while it reads a
# backlog, and lines longer than OFF_LOOP_CHARS have their rules matched in a worker
# thread (RE2 releases the GIL), so no journal line can hold the loop for long.
YIELD_SECONDS = 0.02
OFF_LOOP_CHARS = 1024


def state_paths(state_dir: str) -> dict[str, Path]:
    base = Path(state_dir) / "trigger"
    return {
        "templates": base / "templates.drain",
        "answers": base / "model-answers.json",
        "checkpoints": base / "checkpoints",
    }


def build_pipeline(
    tcfg: TriggerConfig,
    *,
    state_dir: str | None,
    model: StructuredModel | None,
    start_cursor: str | None = None,
    decision_hook: DecisionHook | None = None,
    host: str | None = None,
) -> Pipeline:
    """A pipeline from config; `state_dir=None` keeps templates and answers in memory only.

    `host`: the host every trigger is stamped with (a hub's own id; see Pipeline)."""
    paths = state_paths(state_dir) if state_dir else None
    return assemble_pipeline(
        tcfg,
        Templates(paths["templates"] if paths else None),
        build_classifier(tcfg, model, paths["answers"] if paths else None),
        start_cursor=start_cursor,
        decision_hook=decision_hook,
        host=host,
    )


def build_classifier(tcfg: TriggerConfig, model: StructuredModel | None, answers: Path | None) -> Classifier | None:
    """The trigger model's client for L1 (None: no model, or `trigger.model` off)."""
    if model is None or not tcfg.model:
        return None
    return Classifier(
        model,
        AnswerCache(answers),
        calls_per_minute=tcfg.model_calls_per_minute,
        batch_size=tcfg.model_batch_size,
    )


def assemble_pipeline(
    tcfg: TriggerConfig,
    templates: Templates,
    classifier: Classifier | None,
    *,
    start_cursor: str | None = None,
    decision_hook: DecisionHook | None = None,
    host: str | None = None,
    listen_answers: bool = True,
) -> Pipeline:
    """Rules (built-in + config), bursts and the given templates and classifier (see Pipeline for `host`)."""
    rules = RuleSet.build(
        tcfg.rules, tcfg.disabled_rules, priority_max=tcfg.priority_max if tcfg.priority_max >= 0 else None
    )
    burst = BurstDetector(factor=tcfg.burst_factor, min_count=tcfg.burst_min_count)
    return Pipeline(
        templates,
        rules,
        window_seconds=tcfg.window_seconds,
        classifier=classifier,
        burst=burst,
        model_min_severity=tcfg.model_min_severity,
        start_cursor=start_cursor,
        decision_hook=decision_hook,
        host=host,
        listen_answers=listen_answers,
    )


def resume(pipeline: Pipeline, checkpoints: CheckpointFiles, cursor: str | None, number: int | None) -> bool:
    """Restore the state saved with checkpoint `number` at `cursor`; False (logged) when there is none to use."""
    state = checkpoints.load(number) if cursor is not None else None
    resumed = state is not None and state.get("cursor") == cursor and pipeline.restore(state)
    if cursor is not None and number is not None and not resumed:
        log.warning("L1 resumes at the stored cursor without its checkpoint state (checkpoint %s)", number)
    return bool(resumed)


async def record_checkpoint(
    pipeline: Pipeline,
    checkpoints: CheckpointFiles,
    sink: TriggerSink,
    stream: str,
    recorded_cursor: str | None,
    *,
    force: bool = False,
) -> Checkpoint | None:
    """One checkpoint: state file, then deltas + cursor + its number; None when nothing changed.

    On failure the deltas go back to the pipeline (the next round retries) and the error is raised.
    """
    cp = pipeline.checkpoint(force=force)
    if not cp.triggers and cp.cursor == recorded_cursor and not cp.changed:
        return None
    try:
        if cp.cursor is not None:
            number = await asyncio.to_thread(checkpoints.write, cp.state)
            await sink.record_triggers(cp.triggers, cp.cursor, stream, checkpoint=number)
            await asyncio.to_thread(checkpoints.committed, number)
        else:
            await sink.record_triggers(cp.triggers, cp.cursor, stream)
    except Exception:
        pipeline.failed(cp)
        raise
    pipeline.committed(cp)
    return cp


def journal_source(cfg: Config) -> JournalSource:
    return JournalSource(cfg.journal.source, cfg.journal.path)


class LineFeeder:
    """Journal lines into one pipeline: bad lines counted, long lines matched off the loop, no entry stops L1.

    Per line, `feed` (synchronous: the hot path awaits nothing); an entry it hands back has a
    long message, and its caller awaits `feed_long` for it.
    """

    def __init__(self, pipeline: Pipeline, max_message: int, *, repeat: Callable[[Entry], bool] | None = None):
        """`repeat(entry)`: True for an entry to pass over unprocessed (see hub.py)."""
        self.pipeline = pipeline
        self.max_message = max_message
        self.repeat = repeat
        self._error_logged = 0.0

    def feed(self, line: bytes) -> Entry | None:
        try:
            entry = parse_json_line(line, self.max_message)
        except BadEntry as exc:
            self.pipeline.bad_line()
            log.warning("journal line skipped: %s", exc)
            return None
        if self.repeat is not None and self.repeat(entry):
            self.pipeline.pass_over(entry)
            return None
        if len(entry.message) > OFF_LOOP_CHARS:
            return entry
        try:
            self.pipeline.process(entry)
        except Exception:
            self._failed(entry)
        return None

    async def feed_long(self, entry: Entry) -> None:
        """An entry whose rules are matched in a worker thread (RE2 releases the GIL)."""
        try:
            self.pipeline.process(entry, await asyncio.to_thread(self.pipeline.match_rule, entry))
        except Exception:
            self._failed(entry)

    def _failed(self, entry: Entry) -> None:
        # No journal entry may stop L1: count it as bad, say so (rate-limited), go on.
        self.pipeline.bad_line()
        now = time.monotonic()
        if now - self._error_logged >= 30.0:
            self._error_logged = now
            log.exception("journal entry at %s could not be processed; skipped", entry.cursor)


@dataclass
class FollowStatus:
    recorded_batches: int = 0
    recorded_triggers: int = 0
    last_commit: float | None = None
    sink_errors: int = 0
    last_error: str | None = None


class TriggerFollower:
    def __init__(
        self,
        tcfg: TriggerConfig,
        source: JournalSource,
        sink: TriggerSink,
        *,
        state_dir: str | None,
        model: StructuredModel | None,
        journalctl: str = "journalctl",
        on_record: Callable[[Sequence[Trigger]], None] | None = None,
        poll_interval: float = 0.25,
        host: str | None = None,
    ):
        """`host`: stamp every trigger with this host instead of the entry's `_HOSTNAME` (a hub:
        its own fleet id, the host its executor runs actions for)."""
        self.tcfg = tcfg
        self.host = host
        self.source = source
        self.sink = sink
        self.state_dir = state_dir
        self.model = model
        self.journalctl = journalctl
        self.on_record = on_record
        self.poll_interval = poll_interval  # journal files/directories are polled (see reader)
        self.pipeline: Pipeline | None = None
        self.status = FollowStatus()
        self.started = asyncio.Event()  # set once journalctl runs and the cursor is loaded
        self._recorded_cursor: str | None = None
        self.checkpoints = CheckpointFiles(state_paths(state_dir)["checkpoints"] if state_dir else None)
        self._error_logged = 0.0

    @property
    def degraded(self) -> bool:
        return bool(self.pipeline and self.pipeline.degraded)

    async def run(self) -> None:
        """Follow until cancelled; the last checkpoint is recorded on the way out."""
        cursor, number = await self.sink.load_position("journal")
        self._recorded_cursor = cursor
        self.pipeline = build_pipeline(
            self.tcfg, state_dir=self.state_dir, model=self.model, start_cursor=cursor, host=self.host
        )
        resume(self.pipeline, self.checkpoints, cursor, number)
        log.info("L1 following the %s journal%s", self.source.kind, " from the stored cursor" if cursor else "")
        tasks = [
            asyncio.create_task(self._read(cursor), name="l1-read"),
            asyncio.create_task(self._commit_loop(), name="l1-commit"),
        ]
        if self.pipeline.classifier is not None:
            tasks.append(asyncio.create_task(self.pipeline.classifier.run(), name="l1-classify"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()  # re-raise a reader failure
        finally:
            await stop_tasks(*tasks)
            with contextlib.suppress(Exception):
                await self.commit()

    async def _read(self, cursor: str | None) -> None:
        assert self.pipeline is not None
        feeder = LineFeeder(self.pipeline, self.tcfg.max_message)
        n = 0
        clock = time.monotonic
        last_yield = clock()
        lines = follow_lines(self.source, after_cursor=cursor, binary=self.journalctl, poll_interval=self.poll_interval)
        self.started.set()
        async for line in lines:
            if (long := feeder.feed(line)) is not None:
                await feeder.feed_long(long)
            n += 1
            if n % YIELD_EVERY == 0 or clock() - last_yield >= YIELD_SECONDS:
                await asyncio.sleep(0)
                last_yield = clock()
        raise RuntimeError("journalctl --follow ended")

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tcfg.commit_interval)
            try:
                await self.commit()
            except Exception as exc:
                # Its deltas went back to the pipeline and the cursor did not move: the next
                # round retries.  Logged at most every 30 s (a full disk would flood the log).
                self.status.last_error = f"{type(exc).__name__}: {exc}"
                now = time.monotonic()
                if now - self._error_logged >= 30.0:
                    self._error_logged = now
                    log.error(
                        "L1 checkpoint failed (%d so far), retrying: %s",
                        self.status.sink_errors,
                        self.status.last_error,
                    )

    async def commit(self, force: bool = False) -> int:
        """One checkpoint: state file, then deltas + cursor + its number; returns how many triggers were recorded."""
        if self.pipeline is None:
            return 0
        try:
            cp = await record_checkpoint(
                self.pipeline, self.checkpoints, self.sink, "journal", self._recorded_cursor, force=force
            )
        except Exception:
            self.status.sink_errors += 1
            raise
        if cp is None:
            return 0
        self.status.last_error = None
        self._recorded_cursor = cp.cursor
        self.status.recorded_batches += 1
        self.status.recorded_triggers += len(cp.triggers)
        self.status.last_commit = time.time()
        if self.on_record is not None and cp.triggers:
            self.on_record(cp.triggers)
        return len(cp.triggers)

    def report(self) -> dict[str, Any]:
        stats = self.pipeline.stats.to_json() if self.pipeline else {}
        c = self.pipeline.classifier if self.pipeline else None
        return {
            "degraded": self.degraded,
            **stats,
            "recorded_batches": self.status.recorded_batches,
            "recorded_triggers": self.status.recorded_triggers,
            "checkpoint_errors": self.status.sink_errors,
            "checkpoint_error": self.status.last_error,
            "model_calls": c.calls if c else 0,
            "model_failures": c.failures if c else 0,
            "model_error": c.last_error if c else None,
        }
