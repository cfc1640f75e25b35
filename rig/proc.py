"""Child processes of the rig: started into a log file, reported with its tail when they die."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def spawn_logged(argv: list[str], log_path: Path, **kw: Any) -> subprocess.Popen:
    """Start `argv` in its own session (so the whole group can be killed), output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as logf:
        return subprocess.Popen(
            argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, **kw
        )


def exit_report(proc: subprocess.Popen | None, log_path: Path, tail: int = 2000) -> str | None:
    """None while `proc` runs; once it has exited, its status and the end of its log."""
    if proc is None or proc.poll() is None:
        return None
    return f"exited with {proc.returncode}; log tail:\n{log_path.read_text(errors='replace')[-tail:]}"
