"""disk_usage (space and inodes per mount) and largest_dirs (under an allow-listed set of roots)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psutil

from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj

SKIP_FSTYPES = {"proc", "sysfs", "devpts", "cgroup", "cgroup2", "securityfs", "pstore", "bpf", "tracefs",
                "debugfs", "mqueue", "hugetlbfs", "configfs", "fusectl", "autofs", "binfmt_misc", "squashfs",
                "nsfs", "ramfs"}
PATH_PARAM = {"type": "string", "maxLength": 300, "pattern": r"^/[^\x00-\x1f\x7f]*$",
              "description": "absolute directory under an allowed root"}


def _mounts() -> list[dict[str, Any]]:
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
        out.append({"mount": p.mountpoint, "fstype": p.fstype, "size": u.total, "used": u.used, "free": u.free,
                    "used_percent": round(u.percent, 1), "inodes_used_percent": round(inodes, 1)})
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


def human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.1f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def tools(ctx: Any) -> list[Tool]:
    roots = tuple(ctx.cfg.meta.disk_paths)

    async def usage(args: dict[str, Any]) -> ToolOutput:
        mounts = await asyncio.to_thread(_mounts)
        lines = [f"{m['mount']} {m['fstype']} size {human(m['size'])} used {m['used_percent']}% "
                 f"free {human(m['free'])} inodes {m['inodes_used_percent']}%" for m in mounts]
        worst = max(mounts, key=lambda m: m["used_percent"], default=None)
        summary = f"{len(mounts)} mounts" + (f", fullest {worst['mount']} {worst['used_percent']}%" if worst else "")
        return ToolOutput("\n".join(lines) or "no mounted filesystems", {"mounts": mounts}, summary)

    async def largest(args: dict[str, Any]) -> ToolOutput:
        path = allowed(args["path"], roots)
        if not os.path.isdir(path):
            raise ToolError(f"invalid argument path: {path!r} is not a directory")
        limit = args.get("limit", 10)
        r = await ctx.runner.run(["du", "-x", "-B1", "--max-depth=1", "--", path])
        if r.timed_out:
            raise ToolError("du timed out; pick a deeper, smaller directory")
        sizes = []
        for line in r.stdout.splitlines():
            size, _, name = line.partition("\t")
            if size.isdigit() and name and name != path:
                sizes.append((int(size), name))
        sizes.sort(reverse=True)
        total = next((int(s) for s, _, n in (ln.partition("\t") for ln in r.stdout.splitlines())
                      if n == path and s.isdigit()), sum(s for s, _ in sizes))
        lines = [f"{human(total)} {path} (total)"] + [f"{human(s)} {n}" for s, n in sizes[:limit]]
        if r.stderr.strip():
            lines.append(f"({len(r.stderr.splitlines())} entries unreadable)")
        return ToolOutput("\n".join(lines), {"total": total, "dirs": [{"path": n, "bytes": s} for s, n in sizes[:limit]]},
                          f"{path}: {human(total)}" + (f", largest {sizes[0][1]}" if sizes else ""))

    return [
        Tool("disk_usage", "Space and inode use of every mounted filesystem.", obj({}), usage),
        Tool("largest_dirs", f"The largest subdirectories of a directory (one level, same filesystem); allowed "
             f"roots: {', '.join(roots)}.",
             obj({"path": PATH_PARAM, "limit": {"type": "integer", "minimum": 1, "maximum": 30}}, ("path",)),
             largest, narrow_hint="pick a deeper directory or a lower limit"),
    ]
