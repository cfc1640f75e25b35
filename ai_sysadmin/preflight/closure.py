"""The closure diff: `nix store diff-closures CURRENT NEW`, parsed, and the size the new
closure adds against the free space of the store's file system.

diff-closures prints one line per package name whose versions or size changed
(nix: src/nix/diff-closures.cc, `printClosureDiff`):

    firefox: 120.0 → 121.0, +1234.5 KiB
    zstd: ∅ → 1.5.6, +1.2 KiB        (added; ∅ = no version on that side)
    glibc-locales: +8200.0 KiB        (size only; shown when |delta| >= 8 KiB)
    foo: 1.0, 1.1 → ε                 (several versions; ε = an empty version)

The size is shown in colour (ANSI escapes even when not on a terminal), so they are
stripped first.  Deltas under 8 KiB are not printed: the totals below are a lower bound.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SIZE = re.compile(r"(?:^|, )([+-]\d+(?:\.\d+)?) KiB$")
_ARROW = " \u2192 "  # " → "
DIFF_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PackageChange:
    package: str
    before: tuple[str, ...]  # versions only in the current closure (empty: added)
    after: tuple[str, ...]  # versions only in the new closure (empty: removed)
    size_delta: int | None  # bytes; None when nix did not print it (|delta| < 8 KiB)

    @property
    def kind(self) -> str:
        if not self.before and not self.after:
            return "size"
        if not self.before:
            return "added"
        if not self.after:
            return "removed"
        return "changed"


@dataclass(frozen=True)
class ClosureDiff:
    changes: tuple[PackageChange, ...]
    added_bytes: int  # sum of the positive deltas: what the new closure needs on top
    net_bytes: int
    store_free_bytes: int | None


class ClosureUnavailable(Exception):
    """diff-closures could not run (no nix, a store error): the rest of the check goes on."""


def _versions(text: str) -> tuple[str, ...]:
    text = text.strip()
    if text in ("", "\u2205"):  # ∅
        return ()
    return tuple("" if v == "\u03b5" else v for v in text.split(", "))  # ε


def parse_line(line: str) -> PackageChange | None:
    line = _ANSI.sub("", line).strip()
    name, sep, rest = line.partition(": ")
    if not sep or not name:
        return None
    size: int | None = None
    m = _SIZE.search(rest)
    if m:
        size = round(float(m.group(1)) * 1024)
        rest = rest[: m.start()]
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    if _ARROW in rest:
        left, _, right = rest.partition(_ARROW)
        before, after = _versions(left), _versions(right)
    elif rest.strip():
        return None  # not a diff-closures line (a warning nix printed on stdout)
    return PackageChange(name, before, after, size)


def parse(text: str) -> tuple[PackageChange, ...]:
    return tuple(c for c in map(parse_line, text.splitlines()) if c is not None)


def diff_argv(nix: str, current: str, new: str) -> list[str]:
    return [nix, "--extra-experimental-features", "nix-command", "store", "diff-closures", current, new]


def diff_closures(nix: str, current: str, new: str, store_dir: str) -> ClosureDiff:
    try:
        r = subprocess.run(
            diff_argv(nix, current, new), capture_output=True, text=True, timeout=DIFF_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        raise ClosureUnavailable(f"{nix}: not found (pass --nix PATH)") from None
    except subprocess.TimeoutExpired:
        raise ClosureUnavailable(f"nix store diff-closures took longer than {DIFF_TIMEOUT_S:.0f} s") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        raise ClosureUnavailable(f"nix store diff-closures failed: {_ANSI.sub('', last)[:300]}")
    changes = parse(r.stdout)
    deltas = [c.size_delta for c in changes if c.size_delta is not None]
    return ClosureDiff(changes, sum(d for d in deltas if d > 0), sum(deltas), store_free(store_dir))


def store_free(store_dir: str) -> int | None:
    """Bytes an unprivileged writer may still use on the store's file system."""
    try:
        st = os.statvfs(store_dir)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
