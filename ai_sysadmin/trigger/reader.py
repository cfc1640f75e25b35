"""Reading journald as a stream of entries: `journalctl -o json --all` as a subprocess.

journalctl does the hard parts (journal file format, rotation, interleaving several
files by time, cursors); we read its JSON lines.  `--all` is required: without it
fields over 64 KiB print as null and the message would be lost.  The argv is built
from the configuration only -- never from log or model text -- and run without a shell.

Two readers share the argv: `read_lines` (blocking, for `replay` and benchmarks) and
`follow_lines` (asyncio, for the service).  Bad lines are the parser's business: these
only deliver bytes.

journalctl's stderr is drained all the time (a warning it repeats -- a corrupt file, a
rotated journal -- would otherwise fill the 64 KiB pipe, block journalctl and silently
stall L1); its lines are logged as warnings, at most a few per minute, and the last ones
are kept for the error message if journalctl exits non-zero.

Following: the system journal uses `journalctl --follow`, which wakes on journald's
inotify signal.  A journal directory or file is polled instead (`--after-cursor` with the
last cursor seen, every `poll_interval`): writers other than journald -- systemd-journal-
remote, a copied file -- do not send that signal, and --follow would never see their
new entries (measured with systemd 252).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ai_sysadmin.tasks import stop_tasks

# journald accepts fields up to hundreds of MiB; a line longer than this is skipped
# (and counted as bad) instead of exhausting memory.
MAX_LINE = 64 * 1024 * 1024
READ_CHUNK = 1 << 20
STDERR_LOG_PER_MINUTE = 5
STDERR_KEEP = 20  # last stderr lines kept for an error message

log = logging.getLogger(__name__)


class StderrLog:
    """journalctl's stderr lines: logged as warnings (rate-limited), the last few kept."""

    def __init__(self, per_minute: int = STDERR_LOG_PER_MINUTE, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.tail: deque[str] = deque(maxlen=STDERR_KEEP)
        self.lines = 0
        self.suppressed = 0
        self._window_start = -1e18
        self._logged = 0

    def line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", errors="replace").strip()
        if not text:
            return
        self.lines += 1
        self.tail.append(text[:500])
        now = self.clock()
        if now - self._window_start >= 60.0:
            if self.suppressed:
                log.warning("journalctl: %d more stderr line(s) not shown in the last minute", self.suppressed)
            self._window_start, self._logged, self.suppressed = now, 0, 0
        if self._logged < self.per_minute:
            self._logged += 1
            log.warning("journalctl: %s", text[:500])
        else:
            self.suppressed += 1

    def text(self) -> str:
        return " | ".join(self.tail)[:500]


@dataclass(frozen=True)
class JournalSource:
    kind: str  # system | directory | file | files
    path: str | None = None
    files: tuple[str, ...] = ()  # kind "files": these journal files, read as one journal (a hub's member)

    @classmethod
    def for_path(cls, path: str | os.PathLike[str]) -> JournalSource:
        p = Path(path)
        return cls("directory" if p.is_dir() else "file", str(p))


def journalctl_argv(
    source: JournalSource, *, after_cursor: str | None = None, follow: bool = False, binary: str = "journalctl"
) -> list[str]:
    argv = [binary, "-o", "json", "--all", "--no-pager", "--quiet"]
    if source.kind == "directory":
        argv += ["--directory", str(source.path)]
    elif source.kind == "file":
        argv += ["--file", str(source.path)]
    elif source.kind == "files":
        for name in source.files:
            argv += ["--file", glob_escape(name)]
    elif source.kind != "system":
        raise ValueError(f"unknown journal source {source.kind!r}")
    if after_cursor:
        argv += ["--after-cursor", after_cursor]
    if follow:
        # --lines=all with --follow prints the backlog first (or everything after the
        # cursor), then new entries as they are written.
        argv += ["--follow", "--lines=all"]
    return argv


def glob_escape(path: str) -> str:
    """`path` as a glob matching only itself: journalctl expands `--file` with glob(3), and
    journal-remote's file names carry backslashes (`\\x20`) and whatever a certificate's
    name holds."""
    return "".join("\\" + c if c in "\\*?[" else c for c in path)


class JournalctlError(RuntimeError):
    pass


def read_lines(
    source: JournalSource, *, after_cursor: str | None = None, binary: str = "journalctl"
) -> Iterator[bytes]:
    """Every entry line currently in the journal (after `after_cursor`), then stop."""
    argv = journalctl_argv(source, after_cursor=after_cursor, binary=binary)
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, bufsize=READ_CHUNK
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = StderrLog()
    stderr = proc.stderr

    def drain_stderr() -> None:
        for ln in stderr:
            errors.line(ln)

    drain = threading.Thread(target=drain_stderr, daemon=True, name="journalctl-stderr")
    drain.start()
    try:
        yield from _split_lines(proc.stdout)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        drain.join(5)
        proc.stderr.close()
        proc.stdout.close()
    if proc.returncode not in (0, -9):
        raise JournalctlError(f"journalctl exited {proc.returncode}: {errors.text()}")


def _split_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Lines from a binary stream, read in large chunks (much faster than readline)."""
    pending = b""
    skipping = False
    while True:
        chunk = stream.read1(READ_CHUNK) if hasattr(stream, "read1") else stream.read(READ_CHUNK)
        if not chunk:
            break
        data = pending + chunk
        lines = data.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if skipping:  # the tail of an overlong line
                skipping = False
                yield b""  # surfaces as one bad line
                continue
            if line:
                yield line
        if len(pending) > MAX_LINE:
            pending = b""
            skipping = True
    if pending and not skipping:
        yield pending


async def follow_lines(
    source: JournalSource, *, after_cursor: str | None = None, binary: str = "journalctl", poll_interval: float = 0.25
) -> AsyncIterator[bytes]:
    """Entry lines as they are written; runs until cancelled (or journalctl --follow exits)."""
    if source.kind == "system":
        argv = journalctl_argv(source, after_cursor=after_cursor, follow=True, binary=binary)
        if after_cursor is None:
            # First start on a host: begin with the current boot, not months of history.
            argv.append("--boot")
        async for line in _run_lines(argv):
            yield line
        return
    cursor = after_cursor
    errors = StderrLog()  # one rate limit across the polling runs
    while True:
        tail: deque[bytes] = deque(maxlen=64)
        async for line in _run_lines(journalctl_argv(source, after_cursor=cursor, binary=binary), errors):
            tail.append(line)
            yield line
        # Resume after the last entry that carries a readable cursor (bad lines do not).
        for line in reversed(tail):
            found = cursor_of(line)
            if found:
                cursor = found
                break
        await asyncio.sleep(poll_interval)


def lines_after(
    source: JournalSource, *, after_cursor: str | None, binary: str = "journalctl", errors: StderrLog | None = None
) -> AsyncGenerator[bytes, None]:
    """One poll: the entry lines now in `source` after `after_cursor`, then stop (closing it early kills journalctl)."""
    return _run_lines(journalctl_argv(source, after_cursor=after_cursor, binary=binary), errors)


def lines_up_to(
    source: JournalSource,
    *,
    cursor: str,
    count: int,
    binary: str = "journalctl",
    errors: StderrLog | None = None,
) -> AsyncGenerator[bytes, None]:
    """The entry at `cursor` and the `count - 1` before it, newest first (`--cursor --reverse --lines`)."""
    argv = journalctl_argv(source, binary=binary)
    argv += ["--cursor", cursor, "--reverse", "--lines", str(count), "--output-fields=_BOOT_ID"]
    return _run_lines(argv, errors)


def cursor_of(line: bytes) -> str | None:
    from ai_sysadmin.trigger.entry import _loads

    try:
        value = _loads(line).get("__CURSOR")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _drain_stderr(stream: asyncio.StreamReader, errors: StderrLog) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the reader's limit: take what is there
            line = await stream.read(READ_CHUNK)
        if not line:
            return
        errors.line(line)


async def _run_lines(argv: list[str], errors: StderrLog | None = None) -> AsyncGenerator[bytes, None]:
    """Lines of journalctl's stdout, read in large chunks (per-line reads cost ~15% here)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        limit=2 * READ_CHUNK,
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors = errors if errors is not None else StderrLog()
    drain = asyncio.create_task(_drain_stderr(proc.stderr, errors), name="journalctl-stderr")
    try:
        parts: list[bytes] = []
        size = 0
        skipping = False  # inside a line longer than MAX_LINE: dropped, reported as one bad line
        while True:
            chunk = await proc.stdout.read(READ_CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    if not skipping and start < len(chunk):
                        parts.append(chunk[start:])
                        size += len(chunk) - start
                        if size > MAX_LINE:
                            parts.clear()
                            size = 0
                            skipping = True
                    break
                if skipping:
                    skipping = False
                    yield b""
                else:
                    parts.append(chunk[start:nl])
                    line = b"".join(parts) if len(parts) > 1 else parts[0]
                    parts.clear()
                    size = 0
                    if line:
                        yield line
                start = nl + 1
        if parts and not skipping:
            tail = b"".join(parts)
            if tail:
                yield tail
        rc = await proc.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(drain), 5)
        if rc != 0:
            raise JournalctlError(f"journalctl exited {rc}: {errors.text()}")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        await stop_tasks(drain)
