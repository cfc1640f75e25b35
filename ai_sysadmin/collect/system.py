"""Host readings from /proc and psutil: CPU, memory, swap, load, PSI, disks, network, top processes.

Counters (CPU time, swap pages, network errors) are turned into per-interval values by
keeping the previous reading in the `SystemReader` instance -- never in module state.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from ai_sysadmin.store.metrics import Sample

# Pseudo and container filesystems carry no data an admin can run out of.
_SKIP_FS = {"tmpfs", "devtmpfs", "overlay", "squashfs", "proc", "sysfs", "cgroup", "cgroup2", "nsfs", "ramfs",
            "autofs", "devpts", "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs",
            "fusectl", "hugetlbfs", "efivarfs", "binfmt_misc", "fuse.lxcfs", "nfsd", "rpc_pipefs"}
TOP_N = 5


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


def real_mounts() -> list[psutil._common.sdiskpart]:
    seen: set[str] = set()
    out = []
    for part in psutil.disk_partitions(all=True):
        if part.fstype in _SKIP_FS or not part.fstype or part.mountpoint in seen:
            continue
        seen.add(part.mountpoint)
        out.append(part)
    return out


class SystemReader:
    def __init__(self, proc: str = "/proc"):
        self.proc = Path(proc)
        self._prev_t: float | None = None
        self._prev_cpu: psutil._common.scputimes | None = None
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
                add("cpu.iowait_percent", 100.0 * (getattr(cpu, "iowait", 0.0) - getattr(self._prev_cpu, "iowait", 0.0)) / total)
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

        for part in real_mounts():
            try:
                st = os.statvfs(part.mountpoint)
            except OSError:
                continue
            if st.f_blocks:
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
                usable = used + st.f_bavail * st.f_frsize
                add("disk.used_percent", 100.0 * used / usable if usable else 0.0, part.mountpoint)
            if st.f_files:
                add("disk.inodes_used_percent", 100.0 * (st.f_files - st.f_ffree) / st.f_files, part.mountpoint)

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
        """Top processes by CPU and memory; Process objects are kept so cpu_percent has a baseline."""
        rows = []
        alive: dict[int, psutil.Process] = {}
        for p in psutil.process_iter(["name", "memory_percent"]):
            proc = self._procs.get(p.pid, p)
            try:
                cpu = proc.cpu_percent(None)  # 0.0 on the first sight of a process
                rows.append((f"{p.info['name']}[{p.pid}]", cpu, p.info["memory_percent"] or 0.0))
                alive[p.pid] = proc
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self._procs = alive
        out = [Sample(now, "proc.cpu_percent", cpu, who) for who, cpu, _ in sorted(rows, key=lambda r: -r[1])[:TOP_N]]
        out += [Sample(now, "proc.mem_percent", mem, who) for who, _, mem in sorted(rows, key=lambda r: -r[2])[:TOP_N]]
        return out
