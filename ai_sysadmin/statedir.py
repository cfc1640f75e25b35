"""Room left in the state directory: L1 checkpoints, the outage spool and the quarantine live there.

A full filesystem makes every checkpoint commit fail while the directory is still
"writable" by its permissions, so `doctor` and `status` both ask this one question:
free bytes and free inodes for an unprivileged writer (`f_bavail`, `f_favail`, not the
root reserve the service user cannot use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Below either floor a checkpoint or a spooled batch may not fit: report it before writes fail.
MIN_FREE_BYTES = 64 * 1024 * 1024
MIN_FREE_INODES = 256


@dataclass(frozen=True)
class Room:
    path: str
    free_bytes: int
    total_bytes: int
    free_inodes: int | None  # None: the filesystem does not count inodes (btrfs, tmpfs with nr_inodes=0)

    @property
    def full(self) -> bool:
        return self.free_bytes < MIN_FREE_BYTES or (self.free_inodes is not None and self.free_inodes < MIN_FREE_INODES)

    def describe(self) -> str:
        inodes = "" if self.free_inodes is None else f", {self.free_inodes} inode(s)"
        return f"{self.path}: {_mib(self.free_bytes)} MiB free of {_mib(self.total_bytes)} MiB{inodes}"


def room(path: str) -> Room | None:
    """The room on the filesystem holding `path`; None when the path does not exist (yet)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    inodes = st.f_favail if st.f_files else None
    return Room(path, st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, inodes)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f}"
