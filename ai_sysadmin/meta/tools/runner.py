"""Running a read-only command for a tool: an argv list, a timeout, bounded output, no shell.

`prefix` lets the same tools look into another systemd instance (the test rig enters a
`systemd-nspawn` container with `nsenter`); in the service it is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # read at most this much; a tool budgets far less for the model


@dataclass(frozen=True)
class RunOutput:
    argv: tuple[str, ...]
    returncode: int | None  # None when it timed out and was killed
    stdout: str
    stderr: str
    truncated: bool = False  # stdout exceeded MAX_OUTPUT_BYTES

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class Runner:
    def __init__(self, prefix: tuple[str, ...] | list[str] = (), timeout: float = 20.0):
        self.prefix = tuple(prefix)
        self.timeout = timeout

    async def run(self, argv: list[str], timeout: float | None = None) -> RunOutput:
        for part in argv:
            if not isinstance(part, str) or "\x00" in part:
                raise ValueError(f"argv element {part!r} is not a plain string")
        full = [*self.prefix, *argv]
        env = {
            "PATH": os.environ.get("PATH", "/run/current-system/sw/bin:/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
            "SYSTEMD_PAGER": "",
            "SYSTEMD_COLORS": "0",
            "SYSTEMD_LESS": "",
            "NO_COLOR": "1",
        }
        for key in ("NIX_CONFIG", "NIX_REMOTE", "HOME"):
            if key in os.environ:
                env[key] = os.environ[key]
        proc = await asyncio.create_subprocess_exec(
            *full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err, cut = await asyncio.wait_for(_collect(proc), timeout or self.timeout)
        except TimeoutError:
            _kill(proc)
            with contextlib.suppress(Exception):
                await proc.wait()
            return RunOutput(tuple(full), None, "", "", False)
        except BaseException:
            _kill(proc)
            raise
        return RunOutput(tuple(full), proc.returncode, out, err, cut)


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Read to EOF, keeping at most cap + 1 bytes (so the caller knows it was cut)."""
    buf = bytearray()
    while len(buf) <= cap:
        chunk = await stream.read(65536)  # returns what is there, b"" at EOF
        if not chunk:
            break
        buf += chunk
    return bytes(buf[: cap + 1])


async def _collect(proc: asyncio.subprocess.Process) -> tuple[str, str, bool]:
    assert proc.stdout is not None and proc.stderr is not None
    out, err = await asyncio.gather(_read_capped(proc.stdout, MAX_OUTPUT_BYTES), _read_capped(proc.stderr, 64 * 1024))
    cut = len(out) > MAX_OUTPUT_BYTES
    if cut:  # stop a producer that would go on writing forever
        _kill(proc)
    await proc.wait()
    return (out[:MAX_OUTPUT_BYTES].decode("utf-8", errors="replace"), err.decode("utf-8", errors="replace"), cut)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
