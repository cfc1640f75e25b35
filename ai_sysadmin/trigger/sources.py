"""What `ai-sysadmin replay SOURCE` can read, detected from the path and its first bytes.

* a journal directory, or a `.journal` / `.journal~` file -> journalctl (binary journal)
* a file whose first non-blank byte is `{` -> `journalctl -o json` export, one object a line
* anything else -> plain text lines (syslog and friends, see textparse)

Every kind yields `Entry`s; a line that cannot be an entry is reported through
`on_bad(lineno, reason)` and skipped, so one broken line never stops a replay.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ai_sysadmin.trigger.entry import DEFAULT_MAX_MESSAGE, BadEntry, Entry, parse_json_line
from ai_sysadmin.trigger.reader import JournalSource, read_lines
from ai_sysadmin.trigger.textparse import TextParser

BadHook = Callable[[int, str], None]
JOURNAL_SUFFIXES = (".journal", ".journal~")


def detect(path: str | os.PathLike[str]) -> str:
    """journal | json | text"""
    p = Path(path)
    if p.is_dir() or p.name.endswith(JOURNAL_SUFFIXES):
        return "journal"
    with open(p, "rb") as f:
        head = f.read(4096).lstrip()
    if head.startswith(b"{"):
        return "json"
    if head.startswith(b"LPKSHHRH"):  # journal file magic, whatever its name
        return "journal"
    return "text"


def iter_entries(
    path: str | os.PathLike[str],
    *,
    max_message: int = DEFAULT_MAX_MESSAGE,
    on_bad: BadHook | None = None,
    kind: str | None = None,
) -> Iterator[Entry]:
    kind = kind or detect(path)
    if kind == "journal":
        source = JournalSource.for_path(path)
        yield from _json_lines(read_lines(source), max_message, on_bad)
    elif kind == "json":
        with open(path, "rb") as f:
            yield from _json_lines(f, max_message, on_bad)
    elif kind == "text":
        parser = TextParser(max_message=max_message)
        with open(path, "rb") as f:
            for raw in f:
                if raw.strip():
                    yield parser.parse(raw.decode("utf-8", errors="replace"))
    else:
        raise ValueError(f"unknown source kind {kind!r}")


def _json_lines(lines: Iterable[bytes], max_message: int, on_bad: BadHook | None) -> Iterator[Entry]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            if line == b"" and on_bad is not None:  # the reader's marker for an overlong line
                on_bad(lineno, "line longer than the reader's limit")
            continue
        try:
            yield parse_json_line(line, max_message)
        except BadEntry as exc:
            if on_bad is not None:
                on_bad(lineno, str(exc))
