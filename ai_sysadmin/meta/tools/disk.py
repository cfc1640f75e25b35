"""disk_usage (space and inodes per mount) and largest_dirs (under an allow-listed set of roots).

largest_dirs measures the directory it opened, not a path: it opens the allowed path
component by component without following any symlink, then walks from that fd
(os.fwalk), so a symlink swapped in after the check cannot make it list another tree.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj

SKIP_FSTYPES = {
    "proc",
    "sysfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "pstore",
    "bpf",
    "tracefs",
    "debugfs",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "squashfs",
    "nsfs",
    "ramfs",
}
PATH_PARAM = {
    "type": "string",
    "maxLength": 300,
    "pattern": r"^/[^\x00-\x1f\x7f]*$",
    "description": "absolute directory under an allowed root",
}


def mounts() -> list[dict[str, Any]]:
    out = []
    for p in psutil.disk_partitions(all=True):
        if p.fstype in SKIP_FSTYPES or not p.mountpoint:
            continue
        try:
            u = psutil.disk_usage(p.mountpoint)
            st = os.statvfs(p.mountpoint)
        except OSError:
            continue
        if u.total == 0:
            continue
        inodes = 100.0 * (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
        out.append(
            {
                "mount": p.mountpoint,
                "fstype": p.fstype,
                "size": u.total,
                "used": u.used,
                "free": u.free,
                "used_percent": round(u.percent, 1),
                "inodes_used_percent": round(inodes, 1),
            }
        )
    return out


def allowed(path: str, roots: tuple[str, ...]) -> str:
    """The resolved path when it lies under one of `roots`; else a ToolError naming the field."""
    if ".." in path.split("/"):
        raise ToolError("invalid argument path: must not contain '..'")
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        if real == r or real.startswith(r.rstrip("/") + "/"):
            return real
    raise ToolError(f"invalid argument path: {real!r} is not under an allowed root ({', '.join(roots)})")


@dataclass
class Measured:
    total: int = 0  # bytes allocated under the directory, itself included (du -x -B1)
    children: dict[str, int] = field(default_factory=dict)  # first-level subdirectory -> bytes
    unreadable: int = 0


def open_dir(path: str) -> int:
    """An fd on the directory at `path`, reached through no symbolic link at all.

    Each component is opened relative to its parent with O_NOFOLLOW, so a link swapped
    into any part of the path after `allowed` resolved it fails the open (ELOOP/ENOTDIR)
    instead of leading somewhere else.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open("/", flags)
    try:
        for part in (p for p in path.split("/") if p):
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        os.close(fd)
        raise ToolError(
            f"invalid argument path: {path!r} is not a directory reachable without symlinks ({exc.strerror})"
        ) from None
    return fd


def measure(path: str, deadline: float) -> Measured:
    """du -x --max-depth=1 of the directory opened at `path`, walked only through file descriptors.

    os.fwalk from that fd never follows a symbolic link and never re-resolves a path, so
    what is measured is the tree that was opened, whatever is renamed meanwhile.  Same
    file system only (-x); hard links counted once.
    """
    fd = open_dir(path)
    out = Measured()
    seen: set[tuple[int, int]] = set()
    try:
        dev = os.fstat(fd).st_dev

        def error(exc: OSError) -> None:
            out.unreadable += 1

        for top, dirs, files, dfd in os.fwalk(".", dir_fd=fd, onerror=error, follow_symlinks=False):
            if time.monotonic() > deadline:
                raise ToolError("largest_dirs timed out; pick a deeper, smaller directory")
            child = top.split("/")[1] if top != "." else None
            size = os.fstat(dfd).st_blocks * 512
            for name in (*files, *dirs):
                try:
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                except OSError:
                    out.unreadable += 1
                    continue
                if stat.S_ISDIR(st.st_mode):
                    continue  # counted (with its contents) when fwalk enters it
                if st.st_nlink > 1:
                    if (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                size += st.st_blocks * 512
            # -x: do not descend into another file system
            dirs[:] = [d for d in dirs if _same_dev(d, dfd, dev)]
            out.total += size
            if child is not None:
                out.children[child] = out.children.get(child, 0) + size
    finally:
        os.close(fd)
    return out


def _same_dev(name: str, dfd: int, dev: int) -> bool:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False).st_dev == dev
    except OSError:
        return False


def human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.1f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def _size(n: int | None) -> str:
    return "?" if n is None else human(n)


def tools(ctx: ToolContext) -> list[Tool]:
    roots = tuple(ctx.cfg.meta.disk_paths)

    async def usage(args: dict[str, Any]) -> ToolOutput:
        mounts = await ctx.host.mounts()
        lines = [
            f"{m['mount']} {m.get('fstype') or '?'} size {_size(m.get('size'))} used {m['used_percent']}% "
            f"free {_size(m.get('free'))} inodes {m.get('inodes_used_percent', '?')}%"
            for m in mounts
        ]
        worst = max(mounts, key=lambda m: m["used_percent"], default=None)
        summary = f"{len(mounts)} mounts" + (f", fullest {worst['mount']} {worst['used_percent']}%" if worst else "")
        return ToolOutput("\n".join(lines) or "no mounted filesystems", {"mounts": mounts}, summary)

    async def largest(args: dict[str, Any]) -> ToolOutput:
        m = await ctx.host.largest_dirs(args["path"], args.get("limit", 10))
        path, dirs = m["path"], m["dirs"]
        lines = [f"{_size(m['total'])} {path} (total)"] + [f"{human(d['bytes'])} {d['path']}" for d in dirs]
        if m.get("unreadable"):
            lines.append(f"({m['unreadable']} entries unreadable)")
        return ToolOutput(
            "\n".join(lines),
            {"total": m["total"], "dirs": dirs},
            f"{path}: {_size(m['total'])}" + (f", largest {dirs[0]['path']}" if dirs else ""),
        )

    return [
        Tool("disk_usage", "Space and inode use of every mounted filesystem.", obj({}), usage),
        Tool(
            "largest_dirs",
            f"The largest subdirectories of a directory (one level, same filesystem); allowed "
            f"roots: {', '.join(roots)}.",
            obj({"path": PATH_PARAM, "limit": {"type": "integer", "minimum": 1, "maximum": 30}}, ("path",)),
            largest,
            narrow_hint="pick a deeper directory or a lower limit",
        ),
    ]
