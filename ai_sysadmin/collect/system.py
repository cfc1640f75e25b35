"""Host readings from /proc and psutil: CPU, memory, swap, load, PSI, disks, network, top processes.

Counters (CPU time, swap pages, network errors) are turned into per-interval values by
keeping the previous reading in the `SystemReader` instance -- never in module state.

A hung mount (an NFS server gone, a stuck FUSE daemon) blocks `statvfs` in the kernel,
possibly for ever.  Each mount is therefore asked in a worker thread with a timeout;
a mount that did not answer is skipped (logged once) until its stuck call returns, so
one dead mount never stalls the collector or piles up threads.

Process metrics are per program name (summed over its processes), never per pid: a
pid in a series name would make a new series for every restart.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from ai_sysadmin.store.metrics import Sample

# Pseudo and container filesystems carry no data an admin can run out of.
_SKIP_FS = {
    "devtmpfs",
    "overlay",
    "squashfs",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "nsfs",
    "ramfs",
    "autofs",
    "devpts",
    "mqueue",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "hugetlbfs",
    "efivarfs",
    "binfmt_misc",
    "fuse.lxcfs",
    "nfsd",
    "rpc_pipefs",
}
# tmpfs holds data where an admin puts it (/tmp, /home on a diskless host, /var/cache):
# a full one fails writes like any disk.  Under these roots it is systemd's and the
# kernel's bookkeeping (/run, /run/user/*, /dev/shm), sized by them, not by the admin.
_RUNTIME_ROOTS = ("/run", "/dev", "/sys", "/proc")
TOP_N = 5
STATVFS_TIMEOUT = 2.0

log = logging.getLogger(__name__)


def _read_vmstat(proc: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        for line in (proc / "vmstat").read_text().splitlines():
            k, _, v = line.partition(" ")
            if k in ("pswpin", "pswpout"):
                out[k] = int(v)
    except OSError:
        pass
    return out


def read_psi(proc: Path) -> dict[str, float]:
    """PSI 'some avg10' per resource; empty where the kernel has no /proc/pressure."""
    out: dict[str, float] = {}
    for res in ("cpu", "memory", "io"):
        try:
            for line in (proc / "pressure" / res).read_text().splitlines():
                if line.startswith("some "):
                    fields = dict(f.split("=", 1) for f in line.split()[1:])
                    out[res] = float(fields["avg10"])
        except (OSError, ValueError, KeyError):
            continue
    return out


def real_mounts() -> list[psutil._ntuples.sdiskpart]:
    seen: set[str] = set()
    out = []
    for part in psutil.disk_partitions(all=True):
        if part.fstype in _SKIP_FS or not part.fstype or part.mountpoint in seen:
            continue
        if part.fstype == "tmpfs" and any(
            part.mountpoint == r or part.mountpoint.startswith(r + "/") for r in _RUNTIME_ROOTS
        ):
            continue
        seen.add(part.mountpoint)
        out.append(part)
    return out


class MountStats:
    """statvfs per mount with a timeout, in worker threads; a hung mount is skipped until it answers."""

    def __init__(self, timeout: float = STATVFS_TIMEOUT, statvfs: Callable[[str], os.statvfs_result] = os.statvfs):
        self.timeout = timeout
        self._statvfs = statvfs  # tests pass a stand-in for a hung mount (no NFS server here to kill)
        self._stuck: dict[str, concurrent.futures.Future[os.statvfs_result]] = {}

    def _ask(self, mountpoint: str) -> concurrent.futures.Future[os.statvfs_result]:
        # A daemon thread per call, not a pool: a call stuck in the kernel must not keep the
        # process from exiting (pool workers are joined at exit).
        fut: concurrent.futures.Future[os.statvfs_result] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(self._statvfs(mountpoint))
            except BaseException as exc:
                fut.set_exception(exc)

        threading.Thread(target=run, name=f"statvfs {mountpoint}", daemon=True).start()
        return fut

    def read(self, mounts: list[str]) -> dict[str, os.statvfs_result]:
        out: dict[str, os.statvfs_result] = {}
        asked: dict[str, concurrent.futures.Future[os.statvfs_result]] = {}
        for mp in mounts:
            stuck = self._stuck.get(mp)
            if stuck is not None:
                if not stuck.done():
                    continue  # still hung from an earlier round: do not pile up another thread
                del self._stuck[mp]
                log.info("mount %s answers again", mp)
            asked[mp] = self._ask(mp)
        deadline = time.monotonic() + self.timeout
        for mp, fut in asked.items():
            try:
                out[mp] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                self._stuck[mp] = fut
                log.warning(
                    "mount %s did not answer statvfs within %.0fs (hung network or FUSE mount?); skipped until it does",
                    mp,
                    self.timeout,
                )
            except OSError:
                continue
        return out

    @property
    def hung(self) -> list[str]:
        return sorted(mp for mp, f in self._stuck.items() if not f.done())


class SystemReader:
    def __init__(self, proc: str = "/proc", mounts: MountStats | None = None):
        self.proc = Path(proc)
        self.mounts = mounts or MountStats()
        self._prev_t: float | None = None
        self._prev_cpu: psutil._ntuples.scputimes | None = None
        self._prev_vm: dict[str, int] = {}
        self._prev_net: dict[str, tuple[int, int, int, int]] = {}
        self._procs: dict[int, psutil.Process] = {}

    def read(self) -> list[Sample]:
        now = time.time()
        dt = (now - self._prev_t) if self._prev_t else None
        s: list[Sample] = []
        add = lambda name, value, subject="": s.append(Sample(now, name, float(value), subject))  # noqa: E731

        cpu = psutil.cpu_times()
        if self._prev_cpu is not None:
            busy = sum(cpu) - cpu.idle - getattr(cpu, "iowait", 0.0)
            prev_busy = sum(self._prev_cpu) - self._prev_cpu.idle - getattr(self._prev_cpu, "iowait", 0.0)
            total = sum(cpu) - sum(self._prev_cpu)
            if total > 0:
                add("cpu.percent", 100.0 * (busy - prev_busy) / total)
                add(
                    "cpu.iowait_percent",
                    100.0 * (getattr(cpu, "iowait", 0.0) - getattr(self._prev_cpu, "iowait", 0.0)) / total,
                )
        self._prev_cpu = cpu

        vm = psutil.virtual_memory()
        add("mem.percent", vm.percent)
        add("mem.available_bytes", vm.available)
        sw = psutil.swap_memory()
        add("swap.percent", sw.percent)
        vmstat = _read_vmstat(self.proc)
        if dt and self._prev_vm and vmstat:
            pages = sum(vmstat[k] - self._prev_vm.get(k, vmstat[k]) for k in vmstat)
            add("swap.pages_per_s", max(0.0, pages / dt))
        self._prev_vm = vmstat

        for i, v in enumerate(os.getloadavg()):
            add(f"load.{(1, 5, 15)[i]}", v)
        for res, avg10 in read_psi(self.proc).items():
            add(f"psi.{res}.some_avg10", avg10)

        for mountpoint, st in self.mounts.read([p.mountpoint for p in real_mounts()]).items():
            if st.f_blocks:
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
                usable = used + st.f_bavail * st.f_frsize
                add("disk.used_percent", 100.0 * used / usable if usable else 0.0, mountpoint)
            if st.f_files:
                add("disk.inodes_used_percent", 100.0 * (st.f_files - st.f_ffree) / st.f_files, mountpoint)
        hung = self.mounts.hung
        add("disk.hung_mounts", len(hung))

        for nic, c in psutil.net_io_counters(pernic=True).items():
            cur = (c.errin, c.errout, c.dropin, c.dropout)
            prev = self._prev_net.get(nic)
            if prev is not None:
                add("net.errors", (cur[0] - prev[0]) + (cur[1] - prev[1]), nic)
                add("net.drops", (cur[2] - prev[2]) + (cur[3] - prev[3]), nic)
            self._prev_net[nic] = cur

        s.extend(self._top_processes(now))
        self._prev_t = now
        return s

    def _top_processes(self, now: float) -> list[Sample]:
        """Top programs by CPU and memory (summed over their processes); Process objects are kept
        so cpu_percent has a baseline.  The subject is the program name: never a pid."""
        cpu_by: dict[str, float] = {}
        mem_by: dict[str, float] = {}
        alive: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["name", "memory_percent"]):
            proc = self._procs.get(p.pid, p)
            try:
                cpu = proc.cpu_percent(None)  # 0.0 on the first sight of a process
                name = p.info["name"] or "?"
                cpu_by[name] = cpu_by.get(name, 0.0) + cpu
                mem_by[name] = mem_by.get(name, 0.0) + (p.info["memory_percent"] or 0.0)
                alive[p.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self._procs = alive
        out = [
            Sample(now, "proc.cpu_percent", v, name) for name, v in sorted(cpu_by.items(), key=lambda r: -r[1])[:TOP_N]
        ]
        out += [
            Sample(now, "proc.mem_percent", v, name) for name, v in sorted(mem_by.items(), key=lambda r: -r[1])[:TOP_N]
        ]
        return out
