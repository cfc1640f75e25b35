"""L1 checkpoint state files: what a restart needs beyond the journal cursor, durably.

Every checkpoint gets the next number `n`; its state (held entries, min-count counts,
burst rates: see pipeline.Pipeline.state) is written to `checkpoint-<n>.json` *before*
the sink records the triggers with the cursor and `n` in one transaction.  At start
the sink says which `n` was committed last, and exactly that file is loaded:

* a kill -9 after the file was written but before the commit leaves the previous
  number in the database, and its file is still there (files are only deleted once a
  newer number is committed);
* a kill -9 after the commit finds the new file.

The files live in the state directory, so a large burst state or entries with NUL
bytes never go through PostgreSQL; nothing here is sanitised because nothing here is
shown to anyone.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ai_sysadmin.durable import write_atomic

log = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d+)\.json$")


class CheckpointFiles:
    def __init__(self, directory: str | Path | None):
        self.dir = Path(directory) if directory is not None else None
        self._memory: dict[int, dict[str, Any]] = {}  # no state dir (replay, tests): kept in memory
        self.last = max(self._numbers(), default=0)

    def _numbers(self) -> list[int]:
        if self.dir is None:
            return list(self._memory)
        try:
            return [int(m.group(1)) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        except FileNotFoundError:
            return []

    def _path(self, n: int) -> Path:
        assert self.dir is not None
        return self.dir / f"checkpoint-{n}.json"

    def write(self, state: dict[str, Any]) -> int:
        """Durably keep `state` under the next number and return it (record it with the cursor)."""
        self.last += 1
        n = self.last
        if self.dir is None:
            self._memory[n] = state
            return n
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(n), json.dumps(state, ensure_ascii=True, separators=(",", ":")).encode())
        return n

    def committed(self, n: int) -> None:
        """Checkpoint `n` is durable with its cursor: every other state file is obsolete."""
        for m in self._numbers():
            if m != n:
                if self.dir is None:
                    self._memory.pop(m, None)
                else:
                    self._path(m).unlink(missing_ok=True)

    def load(self, n: int | None) -> dict[str, Any] | None:
        """The state saved with checkpoint `n` (None when there is none to resume from)."""
        if n is None:
            return None
        if self.last < n:
            self.last = n  # numbers keep rising even if the files were lost
        if self.dir is None:
            return self._memory.get(n)
        try:
            return json.loads(self._path(n).read_bytes())
        except FileNotFoundError:
            log.warning(
                "L1 checkpoint state %s is missing; held entries and min-count counts start afresh", self._path(n)
            )
        except ValueError as exc:
            log.warning("L1 checkpoint state %s unreadable (%s); starting afresh", self._path(n), exc)
        return None
