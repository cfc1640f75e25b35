"""The collector on this machine's real /proc, into a real PostgreSQL; thresholds as Triggers."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ai_sysadmin.collect.collector import MetricsCollector
from ai_sysadmin.collect.system import SystemReader, read_psi
from ai_sysadmin.collect.thresholds import evaluate
from ai_sysadmin.collect.units import UnitStates, parse_list_units, read_units, systemd_running
from ai_sysadmin.config import ThresholdsConfig
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.metrics import Sample
from ai_sysadmin.trigger.model import CATEGORIES
from tests.conftest import make_config


def test_reads_the_real_proc() -> None:
    reader = SystemReader()
    first = {s.name for s in reader.read()}
    assert {"mem.percent", "swap.percent", "load.1", "disk.used_percent", "proc.mem_percent"} <= first
    sum(range(200_000))  # some CPU time between readings
    second = reader.read()
    names = {s.name for s in second}
    assert "cpu.percent" in names and "net.errors" in names  # counters need a previous reading
    cpu = next(s.value for s in second if s.name == "cpu.percent")
    assert 0.0 <= cpu <= 100.0
    root = [s for s in second if s.name == "disk.used_percent" and s.subject == "/"]
    assert root and 0.0 < root[0].value <= 100.0
    psi = read_psi(reader.proc)
    if os.path.exists("/proc/pressure/memory"):
        assert "memory" in psi and any(s.name == "psi.memory.some_avg10" for s in second)
    else:
        assert psi == {}


def test_unit_state_says_why_when_systemd_is_not_pid1() -> None:
    units = read_units()
    if systemd_running():
        assert units.available
    else:
        assert not units.available and "not PID 1" in units.reason
    assert parse_list_units(
        "nginx.service loaded failed failed A web server\nsshd.service loaded active running OpenSSH\n"
    ) == {"nginx.service": "failed", "sshd.service": "active"}


def test_thresholds_become_triggers_with_the_shared_vocabulary() -> None:
    now = 1_700_000_000.0  # 800 s into an hour: +60 s is the same dedup window
    samples = [
        Sample(now, "disk.used_percent", 97.0, "/var"),
        Sample(now, "disk.used_percent", 50.0, "/"),
        Sample(now, "psi.memory.some_avg10", 35.0),
        Sample(now, "swap.pages_per_s", 5000.0),
    ]
    units = UnitStates(True, states={"nginx.service": "failed", "sshd.service": "active"})
    triggers = evaluate(samples, units, ThresholdsConfig())
    assert sorted(t.source for t in triggers) == [
        "threshold:disk",
        "threshold:failed-unit",
        "threshold:memory-pressure",
        "threshold:swap-storm",
    ]
    assert all(t.category in CATEGORIES for t in triggers)
    disk = next(t for t in triggers if t.source == "threshold:disk")
    assert disk.category == "disk-full" and "/var" in disk.summary
    # The same breach a minute later is the same trigger (its count grows in the store).
    again = evaluate([Sample(now + 60, "disk.used_percent", 98.5, "/var")], UnitStates(False), ThresholdsConfig())
    assert again[0].id == disk.id


async def test_collect_once_stores_metrics_and_threshold_triggers(pg_database: dict[str, Any], tmp_path: Path) -> None:
    # A 1% disk threshold: the real root filesystem is above it, so a real trigger fires.
    cfg = make_config(tmp_path, database=pg_database, thresholds={"disk_percent": 1})
    store = await open_store(cfg)
    try:
        collector = MetricsCollector(cfg, store.metrics, store.triggers)
        await collector.collect_once()
        reading = await collector.collect_once()
        assert any(t.source == "threshold:disk" for t in reading.triggers)
        assert len(await store.metrics.last_hour("mem.percent")) == 2
        assert await store.metrics.last_hour("cpu.percent")
        disk = next(t for t in reading.triggers if t.source == "threshold:disk")
        stored = await store.triggers.get(disk.id)
        assert stored["count"] == 2 and stored["category"] == "disk-full"
    finally:
        await store.close()


def test_a_hung_mount_is_skipped_not_waited_for() -> None:
    """statvfs on a hung NFS/FUSE mount blocks in the kernel; here a stand-in blocks the same way
    (this machine has no network filesystem to kill), every other mount is the real statvfs."""
    import threading
    import time

    from ai_sysadmin.collect.system import MountStats

    release = threading.Event()
    calls: list[str] = []

    def statvfs(mp: str) -> os.statvfs_result:
        calls.append(mp)
        if mp == "/hung":
            release.wait(30)
        return os.statvfs("/")

    stats = MountStats(timeout=0.3, statvfs=statvfs)
    started = time.monotonic()
    got = stats.read(["/", "/hung"])
    assert time.monotonic() - started < 5  # bounded by the timeout, not by the hung mount
    assert set(got) == {"/"} and stats.hung == ["/hung"]
    got = stats.read(["/", "/hung"])  # still hung: skipped, and no second thread piles up on it
    assert set(got) == {"/"} and calls.count("/hung") == 1
    release.set()
    deadline = time.monotonic() + 10
    while stats.hung and time.monotonic() < deadline:
        release.wait(0.01)
    assert set(stats.read(["/", "/hung"])) == {"/", "/hung"} and not stats.hung


def test_process_metrics_are_per_program_never_per_pid() -> None:
    import re

    samples = SystemReader().read()
    procs = [s for s in samples if s.name.startswith("proc.")]
    assert procs
    for s in procs:
        assert not re.search(r"\[\d+\]", s.subject), s.subject  # a pid would be a new series per restart
        assert str(os.getpid()) not in s.subject
    cpu = [s.subject for s in procs if s.name == "proc.cpu_percent"]
    assert len(cpu) == len(set(cpu))  # one series per program, its processes summed


def test_a_full_tmpfs_outside_the_runtime_roots_is_reported(tmp_path: Path) -> None:
    """A tmpfs /home or /tmp fills like a disk; /run's and /dev's tmpfs are systemd's bookkeeping."""
    import subprocess

    from rig.require import need

    if os.geteuid() != 0:
        need("mounting a tmpfs needs root")
    mnt = tmp_path / "home"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        with open(mnt / "fill", "wb") as f, contextlib.suppress(OSError):  # ENOSPC: the point of the test
            f.write(b"\0" * (2 * 1024 * 1024))
        samples = SystemReader().read()
        used = [s.value for s in samples if s.name == "disk.used_percent" and s.subject == str(mnt)]
        assert used and used[0] >= 99.0, used
        assert not [s for s in samples if s.name == "disk.used_percent" and s.subject.startswith("/run/")]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
