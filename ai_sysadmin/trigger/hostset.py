"""The member hosts in systemd-journal-remote's directory, and which of them have new entries.

`HostSet.scan()` lists the directory once (one `scandir`, a `stat` per file) and groups
its journal files by host (trigger/remote_names.py).  Each host comes with a signature
that changes whenever one of its files gains an entry, so the hub runs journalctl only
for hosts that have something new.  A host whose first file appears later is simply in
the next scan: nothing needs a restart.

Why the signature reads the live file's header: journal-remote writes through mmap, and
the kernel updates a file's mtime only on the first write to a clean page, so a stat
alone can miss an append.  The header's object count (`n_objects`) grows with every entry
and a `pread` of it is as cheap as a stat.  Archived files never change; their name and
inode are enough.

Names that map to no host (not in `fleet.members` when that is set, or to the hub's own
host id: a member cannot speak for the hub) are skipped, each logged once.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from ai_sysadmin.trigger.remote_names import HostNames, UnmappedName, is_journal_name, is_live

log = logging.getLogger(__name__)

# The journal file header (systemd src/libsystemd/sd-journal/journal-def.h, `Header`):
# signature[8], compatible_flags, incompatible_flags, state + reserved[7], file_id,
# machine_id, tail_entry_boot_id, seqnum_id, then eight le64 fields up to `n_objects`.
_N_OBJECTS_OFFSET = 144
_SIGNATURE = b"LPKSHHRH"


@dataclass(frozen=True)
class HostFiles:
    host: str
    files: tuple[str, ...]  # every journal file of the host, live and rotated, sorted
    signature: tuple[tuple[str, int, int, int], ...]  # changes when any of them gains an entry


class HostSet:
    def __init__(
        self, directory: str | os.PathLike[str], *, exclude: Collection[str] = (), names: HostNames | None = None
    ):
        self.dir = Path(directory)
        self.names = names or HostNames()
        self.exclude = frozenset(exclude)
        self._refused: set[str] = set()  # names already logged
        self._missing_logged = False

    def scan(self) -> dict[str, HostFiles]:
        """host -> its files now in the directory (nothing while the directory does not exist)."""
        files: dict[str, list[tuple[str, int, int, int]]] = {}
        try:
            entries = list(os.scandir(self.dir))
        except FileNotFoundError:
            if not self._missing_logged:
                self._missing_logged = True
                log.warning("hub: %s does not exist (yet); no member journal is read until it does", self.dir)
            return {}
        self._missing_logged = False
        for e in entries:
            if not is_journal_name(e.name):
                continue
            host = self._host(e.name)
            if host is None:
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:  # rotated or vacuumed between listing and stat
                continue
            if not e.is_file(follow_symlinks=False):
                continue
            counter = _n_objects(e.path) if is_live(e.name) else 0
            files.setdefault(host, []).append((e.path, st.st_ino, st.st_size, counter))
        return {
            host: HostFiles(host, tuple(p for p, *_ in sorted(group)), tuple(sorted(group)))
            for host, group in files.items()
        }

    def _host(self, name: str) -> str | None:
        try:
            host = self.names.host_of(name)
        except UnmappedName as exc:
            self._refuse(name, f"hub: journal file skipped: {exc}")
            return None
        if host in self.exclude:
            self._refuse(name, f"hub: journal file skipped: {name!r} names the hub's own host id {host!r}")
            return None
        return host

    def _refuse(self, name: str, message: str) -> None:
        if name not in self._refused:
            if len(self._refused) > 10_000:
                self._refused.clear()  # bounded: a directory full of junk logs again, never grows memory
            self._refused.add(name)
            log.warning("%s", message)


def _n_objects(path: str) -> int:
    """The header's object count of a journal file (-1 when unreadable: read it, journalctl will say why)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return -1
    try:
        head = os.pread(fd, 8, 0)
        raw = os.pread(fd, 8, _N_OBJECTS_OFFSET)
    finally:
        os.close(fd)
    if head != _SIGNATURE or len(raw) != 8:
        return -1
    return int(struct.unpack("<Q", raw)[0])
