"""journalctl's stderr is drained while following: a chatty journalctl never stalls L1."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from ai_sysadmin.trigger.reader import JournalSource, follow_lines, read_lines
from rig.journal import JournalWriter
from tests.trigger.helpers import T0_USEC, entry


def chatty_journalctl(tmp_path: Path) -> Path:
    """The real journalctl, preceded by 4 MiB of warnings on stderr (a corrupt or rotating journal
    makes journalctl repeat such lines): far more than a 64 KiB pipe holds if nobody reads it."""
    real = shutil.which("journalctl")
    assert real
    script = tmp_path / "journalctl"
    script.write_text(
        f"#!/bin/sh\nyes 'Journal file x.journal corrupted, ignoring file.' | head -c 4194304 >&2\nexec {real} \"$@\"\n"
    )
    script.chmod(0o755)
    return script


async def test_follow_drains_stderr_and_logs_it_rate_limited(
    journal_writer: JournalWriter, tmp_path: Path, caplog
) -> None:
    jfile = journal_writer.write(
        tmp_path / "j" / "chatty.journal", [entry(f"line {i}") for i in range(50)], start_usec=T0_USEC
    )
    binary = chatty_journalctl(tmp_path)
    got: list[bytes] = []

    async def follow() -> None:
        async for line in follow_lines(JournalSource("file", str(jfile)), binary=str(binary), poll_interval=0.05):
            got.append(line)
            if len(got) == 50:
                return

    with caplog.at_level(logging.WARNING, "ai_sysadmin.trigger.reader"):
        await asyncio.wait_for(follow(), 120)  # would hang for ever on a full stderr pipe
    assert len(got) == 50
    warnings = [r.getMessage() for r in caplog.records if r.getMessage().startswith("journalctl: Journal file")]
    assert 1 <= len(warnings) <= 5  # logged, but rate-limited (the script wrote ~80,000 lines)


def test_replay_reader_drains_stderr_too(journal_writer: JournalWriter, tmp_path: Path) -> None:
    jfile = journal_writer.write(
        tmp_path / "j" / "chatty.journal", [entry(f"line {i}") for i in range(20)], start_usec=T0_USEC
    )
    lines = list(read_lines(JournalSource("file", str(jfile)), binary=str(chatty_journalctl(tmp_path))))
    assert len(lines) == 20 and os.path.exists(jfile)
