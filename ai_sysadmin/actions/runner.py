"""Run one argv: no shell, a timeout, bounded output.

The program is resolved on the executor's own PATH (the unit sets it); an absolute
argv[0] is used as is.  Output beyond the cap is read and dropped, so a chatty command
can neither fill memory nor block on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Environment handed to action commands: only what they need (never the database
# password or credentials directory of the executor).
PASS_ENV = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "NIX_STORE_DIR",
    "NIX_STATE_DIR",
    "NIX_LOG_DIR",
    "NIX_CONF_DIR",
    "NIX_REMOTE",
    "NIX_CONFIG",
    "NIX_PATH",
    "HOME",
)


@dataclass(frozen=True)
class RunResult:
    argv: tuple[str, ...]
    exit_status: int | None  # None: did not start, or killed at the timeout
    stdout: str
    stderr: str
    truncated: bool
    seconds: float
    error: str | None = None  # why it did not run or finish

    @property
    def ok(self) -> bool:
        return self.exit_status == 0 and self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "exit_status": self.exit_status,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    out = {k: env[k] for k in PASS_ENV if k in env}
    out.setdefault("PATH", "/run/current-system/sw/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    return out


def resolve(program: str, env: Mapping[str, str]) -> str | None:
    if os.path.isabs(program):
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program, path=env.get("PATH"))


async def _read_bounded(stream: asyncio.StreamReader, cap: int) -> tuple[bytes, bool]:
    kept = bytearray()
    truncated = False
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return bytes(kept), truncated
        room = cap - len(kept)
        if room > 0:
            kept += chunk[:room]
        if len(chunk) > max(room, 0):
            truncated = True


async def run_argv(argv: Sequence[str], *, timeout: float, cap: int, env: Mapping[str, str] | None = None) -> RunResult:
    argv = tuple(str(a) for a in argv)
    cenv = child_env(env)
    start = time.monotonic()
    program = resolve(argv[0], cenv)
    if program is None:
        return RunResult(argv, None, "", "", False, 0.0, error=f"{argv[0]}: not found or not executable")
    try:
        proc = await asyncio.create_subprocess_exec(
            program,
            *argv[1:],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cenv,
            start_new_session=True,
        )
    except OSError as exc:
        return RunResult(argv, None, "", "", False, time.monotonic() - start, error=f"cannot start: {exc}")
    assert proc.stdout is not None and proc.stderr is not None
    readers = asyncio.gather(_read_bounded(proc.stdout, cap), _read_bounded(proc.stderr, cap))
    error = None
    try:
        async with asyncio.timeout(timeout):
            (out, t1), (err, t2) = await readers
            await proc.wait()
    except TimeoutError:
        error = f"timed out after {timeout:.0f}s; killed"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)  # its own session: the whole group goes
        await proc.wait()
        readers.cancel()
        out, err, t1, t2 = b"", b"", False, False
    return RunResult(
        argv,
        None if error else proc.returncode,
        out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"),
        t1 or t2,
        time.monotonic() - start,
        error,
    )
