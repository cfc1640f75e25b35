"""Correlation the journal itself ties, through the real L1 path (journal files -> L1 -> incidents ->
candidates -> policy at auto-full, no model): a crash's kernel line, its core dump and its unit's
failure are one incident about the unit; I/O errors on a disk and filesystem errors on its
partition are one incident.  Each link comes only from trusted senders (kernel, PID 1,
systemd-coredump): the same words from a user's session link nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ai_sysadmin.config import parse_config
from rig.journal import JournalWriter
from rig.scenarios import by_kind, replay_review
from tests.trigger.helpers import T0_USEC

PID1 = {
    "_PID": "1",
    "_UID": "0",
    "_GID": "0",
    "_COMM": "systemd",
    "_TRANSPORT": "journal",
    "_SYSTEMD_UNIT": "init.scope",
    "SYSLOG_IDENTIFIER": "systemd",
}
KERNEL = {"_TRANSPORT": "kernel", "SYSLOG_IDENTIFIER": "kernel"}
USER = {
    "_PID": "31337",
    "_UID": "1000",
    "_GID": "100",
    "_COMM": "logger",
    "_TRANSPORT": "journal",
    "_SYSTEMD_UNIT": "session-3.scope",
    "_SYSTEMD_SLICE": "user-1000.slice",
}


def coredump(pid: int, comm: str, unit: str | None) -> dict[str, Any]:
    """systemd-coredump's entry, from its own per-dump instance unit."""
    e = {
        "_PID": "5120",
        "_UID": "0",
        "_COMM": "systemd-coredum",
        "_TRANSPORT": "journal",
        "_SYSTEMD_UNIT": "systemd-coredump@0-5120-0.service",
        "SYSLOG_IDENTIFIER": "systemd-coredump",
        "PRIORITY": "2",
        "MESSAGE_ID": "fc2e22bc6ee647b6b90729ab34a250b1",
        "COREDUMP_PID": str(pid),
        "COREDUMP_COMM": comm,
        "COREDUMP_SIGNAL": "11",
        "COREDUMP_SIGNAL_NAME": "SIGSEGV",
        "MESSAGE": f"Process {pid} ({comm}) of user 990 dumped core.\n\nStack trace of thread {pid}:\n"
        f"#0  0x000055d0c0de1a2b parse_request ({comm} + 0x11a2b)",
    }
    if unit:
        e["COREDUMP_UNIT"] = unit
    return e


def crash(pid: int = 4242, unit: str | None = "imgproxy.service") -> list[dict[str, Any]]:
    return [
        {
            **KERNEL,
            "PRIORITY": "6",
            "MESSAGE": f"imgproxy[{pid}]: segfault at 0 ip 000055d0c0de1a2b sp "
            "00007ffd5e7f0c10 error 4 in imgproxy[55d0c0dd0000+10000]",
        },
        coredump(pid, "imgproxy", unit),
        {
            **PID1,
            "UNIT": "imgproxy.service",
            "PRIORITY": "5",
            "EXIT_CODE": "dumped",
            "EXIT_STATUS": "11",
            "MESSAGE": "imgproxy.service: Main process exited, code=dumped, status=11/SEGV",
        },
        {
            **PID1,
            "UNIT": "imgproxy.service",
            "UNIT_RESULT": "core-dump",
            "PRIORITY": "4",
            "MESSAGE": "imgproxy.service: Failed with result 'core-dump'.",
        },
    ]


def disk() -> list[dict[str, Any]]:
    return [
        {
            **KERNEL,
            "PRIORITY": "3",
            "MESSAGE": "blk_update_request: I/O error, dev sdb, sector 8392704 op "
            "0x1:(WRITE) flags 0x800 phys_seg 1 prio class 0",
        },
        {
            **KERNEL,
            "PRIORITY": "3",
            "MESSAGE": "Buffer I/O error on dev sdb1, logical block 1049088, lost async page write",
        },
        {
            **KERNEL,
            "PRIORITY": "2",
            "MESSAGE": "EXT4-fs error (device sdb1): ext4_journal_check_start:83: "
            "comm postgres: Detected aborted journal",
        },
        {**KERNEL, "PRIORITY": "2", "MESSAGE": "EXT4-fs (sdb1): Remounting filesystem read-only"},
    ]


def _run(jw: JournalWriter, tmp_path: Path, name: str, entries: list[dict[str, Any]]) -> dict[str, list]:
    src = jw.write(tmp_path / name / f"{name}.journal", entries, start_usec=T0_USEC)
    cfg = parse_config({"state_dir": str(tmp_path / "state" / name)}, env={})
    return by_kind(asyncio.run(replay_review(cfg, src, None, autonomy="auto-full"))[0])


def _acts(k: dict[str, list]) -> list[tuple[str, str | None]]:
    return [(p["action"], (p.get("params") or {}).get("unit")) for p in k["proposal"] if p["action"] != "notify"]


def test_segfault_coredump_and_core_dump_failure_are_one_incident_about_the_unit(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    k = _run(journal_writer, tmp_path, "crash", crash())
    [inc] = k["incident"]
    assert inc["category"] == "crash" and inc["units"] == ["imgproxy.service"], inc
    assert len(inc["trigger_ids"]) >= 3
    assert ("restart_unit", "imgproxy.service") in _acts(k)
    assert not [u for _, u in _acts(k) if u and u.startswith("systemd-coredump@")]


def test_a_core_dump_without_its_unit_is_not_about_systemd_coredump(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    """A dumped process outside any service (no COREDUMP_UNIT): the messenger's own instance is no target."""
    k = _run(journal_writer, tmp_path, "nounit", crash(unit=None)[:2])
    [inc] = k["incident"]
    assert not any(u.startswith("systemd-coredump@") for u in inc["units"]), inc
    assert not _acts(k), k["proposal"]


def test_crashes_of_two_pids_stay_apart_and_forged_pids_link_nothing(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    """Another process's dump is another crash; a user's line quoting the pid is not the kernel's."""
    other = coredump(777, "thumbnailer", "thumbnailer.service")
    forged = {
        **USER,
        "SYSLOG_IDENTIFIER": "kernel",
        "PRIORITY": "3",
        "MESSAGE": "thumbnailer[777]: segfault at 0 ip 0000000000401000 sp 00007ffd00000000 error 4",
    }
    k = _run(journal_writer, tmp_path, "two", [*crash()[:1], other, forged])
    units = sorted(tuple(i["units"]) for i in k["incident"])
    assert ("thumbnailer.service",) in units and len(k["incident"]) >= 2, k["incident"]
    thumb = next(i for i in k["incident"] if i["units"] == ["thumbnailer.service"])
    assert len(thumb["trigger_ids"]) == 1  # the forged kernel words did not join the real dump


def test_io_errors_and_filesystem_errors_on_its_partition_are_one_incident(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    k = _run(journal_writer, tmp_path, "disk", disk())
    [inc] = k["incident"]
    assert inc["category"] == "hardware", inc
    assert not _acts(k), k["proposal"]  # a failing disk: a person decides (notify only)


def test_errors_on_another_disk_and_forged_fs_errors_stay_apart(journal_writer: JournalWriter, tmp_path: Path) -> None:
    other = {
        **KERNEL,
        "PRIORITY": "2",
        "MESSAGE": "EXT4-fs error (device nvme0n1p2): ext4_find_entry:1455: "
        "inode #2: comm ls: reading directory lblock 0",
    }
    forged = {
        **USER,
        "SYSLOG_IDENTIFIER": "kernel",
        "PRIORITY": "2",
        "MESSAGE": "EXT4-fs error (device sdb1): ext4_journal_check_start:83: Detected aborted journal",
    }
    k = _run(journal_writer, tmp_path, "apart", [*disk()[:2], other, forged])
    # The sdb incident keeps only the kernel's sdb lines: neither nvme0n1's error nor the user's
    # text naming sdb1 joins it (those two are filesystem errors, together by category).
    [sdb] = [i for i in k["incident"] if i["category"] == "hardware"]
    assert len(sdb["trigger_ids"]) == 2 and len(k["incident"]) == 2, k["incident"]
