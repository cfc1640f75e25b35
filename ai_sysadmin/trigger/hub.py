"""L1 on a fleet hub: every member's journal, one pipeline per host, in this one process.

systemd-journal-remote (SplitMode=host) writes each member's journal to its own files in
one directory.  `MemberFollower` polls that directory (trigger/hostset.py) and, for each
host whose files gained entries, runs one short `journalctl --file ... --after-cursor`
over that host's files (live and rotated) -- one subprocess at a time, none resident.
Each host has

* its host id from the file name through `fleet.members` (trigger/remote_names.py),
  never from `_HOSTNAME`: the
  pipeline stamps every trigger with it and scopes trigger ids to it, so one template
  on two hosts is two triggers;
* its own cursor in the sink (stream `journal@<host>`) and its own checkpoint state
  files (`<state_dir>/trigger/members/<host>/checkpoints/`), committed together as the
  single-host follower does (trigger/checkpoints.py): after a restart every host resumes
  exactly at its cursor.

The members share one template miner (so a template has one id on every host: what
fleet-wide correlation groups by) and one trigger-model client (one budget,
`trigger.model_calls_per_minute`, for all members; its answers are routed to every
host's pipeline).  A host with a long backlog is read `MAX_PER_TURN` entries at a time,
so one member's first upload does not starve the others.

`HubL1` runs this next to the hub's own journal follower and is what the service runs
as L1 on a hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_sysadmin.config import TriggerConfig
from ai_sysadmin.tasks import stop_tasks
from ai_sysadmin.trigger.checkpoints import CheckpointFiles
from ai_sysadmin.trigger.classifier import Answer, Classifier, StructuredModel
from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.follower import (
    YIELD_EVERY,
    YIELD_SECONDS,
    LineFeeder,
    TriggerFollower,
    assemble_pipeline,
    build_classifier,
    record_checkpoint,
    resume,
)
from ai_sysadmin.trigger.hostset import HostFiles, HostSet
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.pipeline import Pipeline
from ai_sysadmin.trigger.reader import JournalctlError, JournalSource, StderrLog, cursor_of, lines_after, lines_up_to
from ai_sysadmin.trigger.remote_names import HostNames
from ai_sysadmin.trigger.sink import TriggerSink
from ai_sysadmin.trigger.templates import Templates

log = logging.getLogger(__name__)

MAX_PER_TURN = 20_000  # entries read from one host before the next host's turn
ERROR_LOG_EVERY = 60.0  # seconds between logged read/checkpoint failures of one host
# Identities of the last entries taken in, per host, that a re-sent copy is recognised by.
# journal-upload re-sends from its last acknowledged cursor: at most what the hub had stored
# of the POST a kill cut off (6,983 entries measured for a backlog, 0 for a paced stream;
# one POST streams until the backlog is drained).  Copies of entries older than the last
# REPEAT_WINDOW taken in are taken in again.  ~60 bytes per identity: ~3 MiB per host.
REPEAT_WINDOW = 50_000


def stream_of(host: str) -> str:
    """The sink stream (cursor row) of a member's journal."""
    return f"journal@{host}"


def member_paths(state_dir: str) -> dict[str, Path]:
    base = Path(state_dir) / "trigger"
    return {
        "templates": base / "member-templates.drain",
        "answers": base / "member-model-answers.json",
        "hosts": base / "members",
    }


def identity(cursor: str | None) -> str | None:
    """What makes an entry itself, from its cursor: boot id, monotonic and realtime clocks, content hash.

    The `s=`/`i=` parts (the file's sequence number) are left out: they are the copy's, not the entry's.
    """
    # sd_journal_get_cursor: "s=<seqnum id>;i=<seqnum>;b=<boot id>;m=<monotonic>;t=<realtime>;x=<xor hash>"
    parts = cursor.split(";") if cursor else ()
    if len(parts) != 6 or not (parts[2].startswith("b=") and parts[5].startswith("x=")):
        return None
    return cursor[len(parts[0]) + len(parts[1]) + 2 :] if cursor else None


class RecentEntries:
    """The identities of the last `size` entries taken in (a bounded set, oldest forgotten first).

    Kept as Python hashes of the identity (64 bits; rebuilt from the files after a restart,
    never stored, so the per-process hash seed does not matter)."""

    def __init__(self, size: int = REPEAT_WINDOW) -> None:
        self.size = size
        self._order: deque[int] = deque()
        self._seen: set[int] = set()

    def __len__(self) -> int:
        return len(self._order)

    def seen(self, found: str) -> bool:
        """True for an identity among the last `size`; otherwise it is remembered and False."""
        h = hash(found)
        if h in self._seen:
            return True
        self._seen.add(h)
        self._order.append(h)
        if len(self._order) > self.size:
            self._seen.discard(self._order.popleft())
        return False


@dataclass
class Lane:
    """One member host's L1: its pipeline, checkpoint files, cursors and read state.

    systemd-journal-upload sends again what it sent after its last acknowledged cursor each
    time it starts (measured with systemd 252: the entry at its saved cursor after a clean
    restart; after journal-remote was killed mid-POST, every entry of that POST the hub had
    stored, into a new file next to the set-aside one).  The hub's journalctl yields such
    copies after the cursor, so an entry whose identity (`identity`) is among the last
    `REPEAT_WINDOW` taken in (`recent`) is passed over.  After a restart `recent` is rebuilt
    from the files: the entries up to the host's cursor.
    """

    host: str
    pipeline: Pipeline
    checkpoints: CheckpointFiles
    max_message: int
    recorded_cursor: str | None  # the cursor the sink holds for this host
    read_signature: tuple[Any, ...] | None = None  # the files as they were when last read through
    more: bool = False  # the last turn stopped at MAX_PER_TURN
    stderr: StderrLog = field(default_factory=StderrLog)
    recorded_triggers: int = 0
    repeats: int = 0  # entries passed over as repeats of the one before
    read_errors: int = 0
    checkpoint_errors: int = 0
    last_error: str | None = None
    _error_logged: float = -1e18
    recent: RecentEntries = field(default_factory=RecentEntries)
    feeder: LineFeeder = field(init=False)

    def __post_init__(self) -> None:
        self.feeder = LineFeeder(self.pipeline, self.max_message, repeat=self._repeat)

    @property
    def stream(self) -> str:
        return stream_of(self.host)

    def _repeat(self, entry: Entry) -> bool:
        found = identity(entry.cursor)
        if found is None or not self.recent.seen(found):
            return False
        self.repeats += 1
        return True

    def log_error(self, what: str, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._error_logged >= ERROR_LOG_EVERY:
            self._error_logged = now
            log.error("hub: %s for host %s failed, retrying: %s", what, self.host, self.last_error)


class MemberFollower:
    def __init__(
        self,
        tcfg: TriggerConfig,
        directory: str,
        sink: TriggerSink,
        *,
        state_dir: str | None,
        model: StructuredModel | None,
        own_host: str | None = None,
        members: Mapping[str, str] | None = None,
        journalctl: str = "journalctl",
        on_record: Callable[[Sequence[Trigger]], None] | None = None,
        poll_interval: float = 0.25,
        max_per_turn: int = MAX_PER_TURN,
        repeat_window: int = REPEAT_WINDOW,
    ):
        self.tcfg = tcfg
        self.hosts = HostSet(directory, exclude=[own_host] if own_host else (), names=HostNames(members or {}))
        self.sink = sink
        self.state_dir = state_dir
        self.journalctl = journalctl
        self.on_record = on_record
        self.poll_interval = poll_interval
        self.max_per_turn = max_per_turn
        self.repeat_window = repeat_window
        paths = member_paths(state_dir) if state_dir else None
        self._paths = paths
        self.templates = Templates(paths["templates"] if paths else None)
        self.classifier: Classifier | None = build_classifier(tcfg, model, paths["answers"] if paths else None)
        if self.classifier is not None:
            self.classifier.on_answer = self._answered
        self.lanes: dict[str, Lane] = {}
        self.scans = 0
        self._open_logged: dict[str, float] = {}

    @property
    def degraded(self) -> bool:
        return bool(self.classifier and self.classifier.degraded)

    async def run(self) -> None:
        """Follow every member until cancelled; each host's last checkpoint is recorded on the way out."""
        log.info("hub: following the member journals in %s", self.hosts.dir)
        tasks = [
            asyncio.create_task(self._watch(), name="l1-members"),
            asyncio.create_task(self._commit_loop(), name="l1-members-commit"),
        ]
        if self.classifier is not None:
            tasks.append(asyncio.create_task(self.classifier.run(), name="l1-members-classify"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            await stop_tasks(*tasks)
            with contextlib.suppress(Exception):
                await self.commit()

    async def _watch(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.poll_interval)

    async def poll(self) -> int:
        """One round: rescan the directory, read every host whose files changed; returns entries read."""
        found = self.hosts.scan()
        self.scans += 1
        n = 0
        for host in sorted(found):
            files = found[host]
            lane = self.lanes.get(host) or await self._try_open(host, files)
            if lane is None:
                continue
            if lane.more or lane.read_signature != files.signature:
                n += await self._read(lane, files)
        return n

    async def _try_open(self, host: str, files: HostFiles) -> Lane | None:
        """A new host's lane; None (logged, retried next round) when its position cannot be loaded."""
        try:
            return await self._open(host, files)
        except Exception as exc:
            now = time.monotonic()
            if now - self._open_logged.get(host, -1e18) >= ERROR_LOG_EVERY:
                self._open_logged[host] = now
                log.error("hub: cannot start following host %s, retrying: %s: %s", host, type(exc).__name__, exc)
            return None

    async def _open(self, host: str, files: HostFiles) -> Lane:
        cursor, number = await self.sink.load_position(stream_of(host))
        pipeline = assemble_pipeline(
            self.tcfg, self.templates, self.classifier, start_cursor=cursor, host=host, listen_answers=False
        )
        checkpoints = CheckpointFiles(self._paths["hosts"] / host / "checkpoints" if self._paths else None)
        resume(pipeline, checkpoints, cursor, number)
        lane = Lane(
            host, pipeline, checkpoints, self.tcfg.max_message, cursor, recent=RecentEntries(self.repeat_window)
        )
        if cursor:
            await self._remember(lane, files, cursor)
        self.lanes[host] = lane
        log.info("hub: following host %s%s", host, " from its stored cursor" if cursor else " from its first entry")
        return lane

    async def _remember(self, lane: Lane, files: HostFiles, cursor: str) -> None:
        """`lane.recent` as it was when `cursor` was taken in: the identities up to it, from the files."""
        source = JournalSource("files", files=files.files)
        newest_first: list[str] = []
        lines = lines_up_to(source, cursor=cursor, count=lane.recent.size, binary=self.journalctl, errors=lane.stderr)
        async with contextlib.aclosing(lines):
            async for line in lines:
                if (found := identity(cursor_of(line))) is not None:
                    newest_first.append(found)
        for found in reversed(newest_first):
            lane.recent.seen(found)

    async def _read(self, lane: Lane, files: HostFiles) -> int:
        """One turn of one host: its entries after its cursor, at most max_per_turn of them."""
        source = JournalSource("files", files=files.files)
        n = 0
        more = False
        clock = time.monotonic
        last_yield = clock()
        try:
            lines = lines_after(source, after_cursor=lane.pipeline.cursor, binary=self.journalctl, errors=lane.stderr)
            async with contextlib.aclosing(lines):
                async for line in lines:
                    if (long := lane.feeder.feed(line)) is not None:
                        await lane.feeder.feed_long(long)
                    n += 1
                    if n >= self.max_per_turn:
                        more = True
                        break
                    if n % YIELD_EVERY == 0 or clock() - last_yield >= YIELD_SECONDS:
                        await asyncio.sleep(0)
                        last_yield = clock()
        except JournalctlError as exc:
            # A file rotated or vacuumed between the scan and journalctl: the next scan sees
            # the new set; the signature stays old so this host is read again.
            lane.read_errors += 1
            lane.log_error("reading the journal", exc)
            return n
        # The signature was taken before this read: anything written since is read next round.
        lane.read_signature = files.signature
        lane.more = more
        return n

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tcfg.commit_interval)
            await self.commit()

    async def commit(self) -> int:
        """A checkpoint of every host with something new; returns how many triggers were recorded."""
        recorded = 0
        for lane in list(self.lanes.values()):
            try:
                cp = await record_checkpoint(
                    lane.pipeline, lane.checkpoints, self.sink, lane.stream, lane.recorded_cursor
                )
            except Exception as exc:
                lane.checkpoint_errors += 1
                lane.log_error("the checkpoint", exc)
                continue
            if cp is None:
                continue
            lane.recorded_cursor = cp.cursor
            lane.recorded_triggers += len(cp.triggers)
            lane.last_error = None
            recorded += len(cp.triggers)
            if self.on_record is not None and cp.triggers:
                self.on_record(cp.triggers)
        return recorded

    def _answered(self, tid: str, answer: Answer | None) -> None:
        for lane in self.lanes.values():
            lane.pipeline.answered(tid, answer)

    def host_report(self) -> dict[str, dict[str, Any]]:
        """Per host: entries read, triggers recorded, errors (the hub's per-host L1 figures)."""
        return {
            host: {
                **lane.pipeline.stats.to_json(),
                "recorded_triggers": lane.recorded_triggers,
                "repeats": lane.repeats,
                "read_errors": lane.read_errors,
                "checkpoint_errors": lane.checkpoint_errors,
                "last_error": lane.last_error,
            }
            for host, lane in sorted(self.lanes.items())
        }

    def report(self) -> dict[str, Any]:
        lanes = self.lanes.values()
        c = self.classifier
        return {
            "member_hosts": len(self.lanes),
            "member_entries": sum(lane.pipeline.stats.entries for lane in lanes),
            "member_triggers": sum(lane.recorded_triggers for lane in lanes),
            "member_errors": sum(lane.read_errors + lane.checkpoint_errors for lane in lanes),
            "member_model_calls": c.calls if c else 0,
        }


class HubL1:
    """L1 of a hub: its own journal (`own`) and every member's (`members`); either failing stops L1."""

    def __init__(self, own: TriggerFollower, members: MemberFollower):
        self.own = own
        self.members = members

    @property
    def degraded(self) -> bool:
        return self.own.degraded or self.members.degraded

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.own.run(), name="l1-own"),
            asyncio.create_task(self.members.run(), name="l1-members-all"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for t in done:
                t.result()
        finally:
            await stop_tasks(*tasks)

    def report(self) -> dict[str, Any]:
        return {**self.own.report(), **self.members.report(), "degraded": self.degraded}
