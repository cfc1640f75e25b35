"""Hub ingest: member journals through the per-host L1 pipelines of one process (docs/fleet.md, "Sizing").

For 1, 10 and 50 hosts, each host's journal is a real journal file written by
systemd-journal-remote and named as it names a member's file in SplitMode=host
(`remote-CN=<host>.journal`).  The lines are loghub's Linux, OpenSSH, HDFS and BGL
samples (https://github.com/logpai/loghub), a different slice and different numbers per
host.  The hub's L1 (`MemberFollower`: rules, templates, bursts, windows; the trigger
model off) reads them with journalctl into a durable JSON-lines sink, exactly as the
service does (one journalctl at a time, per-host cursors and checkpoint files).

    python -m bench.hub_ingest [--hosts 1 10 50] [--entries 2000] [--rounds 5] [--append 20]

Each size runs in a fresh process and prints:

* backlog: every host's `--entries` read from its first entry -- wall, CPU (this process
  plus its journalctl children), entries/s per core (entries / CPU seconds);
* steady: `--rounds` rounds in which every host gains `--append` entries (a member's
  normal trickle): CPU per round, entries/s per core -- here each changed host costs one
  journalctl start, which is what bounds hosts per core;
* idle: a round in which nothing changed (the directory rescan alone), CPU per round;
* the same backlog as one host's one file, entries/s per core: the baseline under the
  machine's load at that moment (per-host overhead = the ratio of the two);
* RSS growth per host (psutil) after the backlog.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.hub import MemberFollower
from ai_sysadmin.trigger.remote_names import remote_file_name
from ai_sysadmin.trigger.sink import JsonlTriggerSink
from ai_sysadmin.trigger.textparse import TextParser
from bench.l1_throughput import loghub_lines, shifted
from rig.journal import JournalWriter

T0_USEC = 1_700_000_000_000_000
IDLE_ROUNDS = 200  # rounds with nothing new: enough for the CPU clock's 10 ms resolution


def host_entries(lines: list[tuple[str, str]], host: int, n: int, offset: int = 0) -> list[dict[str, Any]]:
    """n journal entries for host `host`: its own slice of the loghub lines, numbers shifted by host."""
    parser = TextParser()
    out = []
    for j in range(n):
        name, line = lines[(host * 997 + offset + j) % len(lines)]
        e = parser.parse(shifted(line, host + offset))
        ident = e.identifier or name.lower()
        out.append(
            {
                "MESSAGE": e.message,
                "PRIORITY": e.priority if e.priority is not None else 6,
                "SYSLOG_IDENTIFIER": ident,
                "_PID": e.pid or str(1000 + host),
                "_COMM": ident[:15],
                "_SYSTEMD_UNIT": f"{name.lower()}.service",
                "_UID": "0",
                "_GID": "0",
                "_TRANSPORT": "syslog",
            }
        )
    return out


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


async def drain(f: MemberFollower) -> int:
    n = 0
    while read := await f.poll():
        n += read
    await f.commit()
    return n


def child(hosts: int, entries: int, rounds: int, append: int) -> dict[str, Any]:
    lines = loghub_lines()
    writer = JournalWriter()
    tmp = Path(tempfile.mkdtemp(prefix="hub-ingest-"))
    remote = tmp / "remote"
    names = [f"host-{i:02d}" for i in range(hosts)]
    for i, host in enumerate(names):
        writer.write(remote / remote_file_name(f"CN={host}"), host_entries(lines, i, entries), start_usec=T0_USEC)
    cfg = parse_config({"state_dir": str(tmp / "state"), "trigger": {"model": False}}, env={})
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    f = MemberFollower(
        cfg.trigger, str(remote), JsonlTriggerSink(tmp / "triggers.jsonl"), state_dir=str(tmp / "state"), model=None
    )

    async def backlog() -> int:
        return await drain(f)

    cpu0, t0 = cpu_seconds(proc), time.perf_counter()
    read = asyncio.run(backlog())
    wall, cpu = time.perf_counter() - t0, cpu_seconds(proc) - cpu0
    gc.collect()
    rss1 = proc.memory_info().rss
    assert read == hosts * entries, f"read {read} of {hosts * entries}"

    steady_cpu = steady_wall = 0.0
    steady_read = 0
    for r in range(rounds):
        for i, host in enumerate(names):
            writer.write(
                remote / remote_file_name(f"CN={host}"),
                host_entries(lines, i, append, offset=entries + r * append),
                start_usec=T0_USEC + (r + 1) * 60_000_000,
            )
        c0, w0 = cpu_seconds(proc), time.perf_counter()
        steady_read += asyncio.run(drain(f))
        steady_wall += time.perf_counter() - w0
        steady_cpu += cpu_seconds(proc) - c0
    assert steady_read == hosts * rounds * append, f"steady: read {steady_read} of {hosts * rounds * append}"

    async def idle() -> int:
        return sum([await f.poll() for _ in range(IDLE_ROUNDS)])

    c0 = cpu_seconds(proc)
    assert asyncio.run(idle()) == 0
    idle_cpu = (cpu_seconds(proc) - c0) / IDLE_ROUNDS

    # Baseline under the same machine load: the same entries as one host's one file.
    one = tmp / "one-host"
    writer.write(
        one / remote_file_name("CN=all"),
        [e for i in range(hosts) for e in host_entries(lines, i, entries)],
        start_usec=T0_USEC,
    )
    single = MemberFollower(
        cfg.trigger, str(one), JsonlTriggerSink(tmp / "one.jsonl"), state_dir=str(tmp / "one-state"), model=None
    )
    c0 = cpu_seconds(proc)
    assert asyncio.run(drain(single)) == hosts * entries
    single_cpu = cpu_seconds(proc) - c0
    return {
        "hosts": hosts,
        "entries": read,
        "backlog_wall_s": round(wall, 2),
        "backlog_cpu_s": round(cpu, 2),
        "backlog_per_core": round(read / cpu),
        "backlog_per_s_wall": round(read / wall),
        "steady_entries": steady_read,
        "steady_cpu_per_round_s": round(steady_cpu / rounds, 3),
        "steady_wall_per_round_s": round(steady_wall / rounds, 3),
        "steady_per_core": round(steady_read / steady_cpu),
        "idle_round_cpu_ms": round(idle_cpu * 1000, 2),
        "one_host_per_core": round(read / single_cpu),
        "rss_growth_mib": round((rss1 - rss0) / 2**20, 1),
        "rss_per_host_kib": round((rss1 - rss0) / hosts / 1024),
        "triggers": sum(r["recorded_triggers"] for r in f.host_report().values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--entries", type=int, default=2000, help="entries per host in the backlog")
    ap.add_argument("--rounds", type=int, default=5, help="steady rounds")
    ap.add_argument("--append", type=int, default=20, help="entries per host per steady round")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.entries, args.rounds, args.append)))
        return
    print(f"python {sys.version.split()[0]}, {psutil.cpu_count()} cores, journalctl {_journalctl_version()}")
    for hosts in args.hosts:
        out = subprocess.run(
            [
                *(sys.executable, "-m", "bench.hub_ingest", "--child", str(hosts)),
                *("--entries", str(args.entries), "--rounds", str(args.rounds), "--append", str(args.append)),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['hosts']:>3} hosts: backlog {r['entries']} entries in {r['backlog_wall_s']} s wall, "
            f"{r['backlog_cpu_s']} s CPU = {r['backlog_per_core']} entries/s per core "
            f"(the same entries as one host: {r['one_host_per_core']}/s per core); "
            f"steady ({args.append}/host/round) {r['steady_cpu_per_round_s'] * 1000:.0f} ms CPU "
            f"({r['steady_wall_per_round_s'] * 1000:.0f} ms wall) per round "
            f"= {r['steady_per_core']} entries/s per core; "
            f"idle round {r['idle_round_cpu_ms']} ms CPU; "
            f"RSS +{r['rss_growth_mib']} MiB = {r['rss_per_host_kib']} KiB per host; {r['triggers']} triggers"
        )


def _journalctl_version() -> str:
    out = subprocess.run(["journalctl", "--version"], capture_output=True, text=True)
    return out.stdout.split("\n", 1)[0].split(" ", 1)[-1] if out.returncode == 0 else "?"


if __name__ == "__main__":
    main()
