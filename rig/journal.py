"""Real journal files, written by systemd-journal-remote from journal export format.

`JournalWriter.write(path, entries)` turns dicts of journal fields into a real
`.journal` file that `journalctl --file` (and so the L1 reader) reads like any other.
Values may be `bytes` (binary-safe export encoding: a field name, newline, a
little-endian 64-bit length and the raw data), which is how journald itself carries
non-UTF-8 and multi-line messages.
"""

from __future__ import annotations

import os
import struct
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rig.paths import rig_paths

Entry = Mapping[str, str | bytes | int | None]  # None omits a default field (e.g. PRIORITY)


def export_format(
    entries: Iterable[Entry], *, boot_id: str | None = None, hostname: str = "testhost", start_usec: int | None = None
) -> bytes:
    """Serialise entries in journal export format, filling the fields journald adds."""
    boot = boot_id or uuid.uuid4().hex
    now = start_usec if start_usec is not None else int(time.time() * 1_000_000)
    out = bytearray()
    for i, entry in enumerate(entries):
        fields: dict[str, str | bytes | int | None] = {
            "__REALTIME_TIMESTAMP": now + i,
            "__MONOTONIC_TIMESTAMP": 1_000_000 + i,
            "_BOOT_ID": boot,
            "_HOSTNAME": hostname,
            "PRIORITY": 6,
        }
        fields.update(entry)
        for key, value in fields.items():
            if value is None:
                continue
            data = value if isinstance(value, bytes) else str(value).encode()
            if isinstance(value, bytes) or b"\n" in data:
                out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
            else:
                out += key.encode() + b"=" + data + b"\n"
        out += b"\n"
    return bytes(out)


@dataclass
class JournalWriter:
    binary: Path = field(default_factory=lambda: rig_paths().need("journal_remote"))

    def write(self, path: Path, entries: Iterable[Entry], **kw: object) -> Path:
        """Write (or append to) the journal file `path` (must end in .journal)."""
        path = Path(path)
        if path.suffix != ".journal":
            raise ValueError("journal file names must end in .journal")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = export_format(entries, **kw)  # type: ignore[arg-type]
        r = subprocess.run(
            [str(self.binary), f"--output={path}", "--split-mode=none", "--compress=no", "-"],
            input=data,
            capture_output=True,
            env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"},
        )
        if r.returncode != 0:
            raise RuntimeError(f"systemd-journal-remote failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
        return path
