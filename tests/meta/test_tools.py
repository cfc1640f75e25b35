"""The investigation tools against real parts: journal files, systemd in nspawn, PostgreSQL, a nix store.

No model here: tools are called the way the loop calls them (`Toolset.call`), so what is
asserted is what the model would be given.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.meta.tools import build_toolset
from ai_sysadmin.meta.tools.names import TOOL_NAMES
from ai_sysadmin.meta.tools.runner import Runner


def cfg_for(tmp_path: Path, **sections: Any):
    return parse_config({"state_dir": str(tmp_path / "state"), **sections}, env={})


def test_catalog_names_match_the_modules(tmp_path: Path) -> None:
    tools = build_toolset(cfg_for(tmp_path))
    assert tuple(tools.names) == TOOL_NAMES
    for d in tools.definitions():
        assert d["type"] == "function" and d["function"]["parameters"]["additionalProperties"] is False
    kinds = {t["name"]: t["kind"] for t in tools.catalog()}
    assert [n for n, k in kinds.items() if k != "read"] == ["propose_action"]  # nothing else acts


# ------------------------------------------------------------------ journal


@pytest.fixture()
def journal_tools(tmp_path: Path, crash_journal: Path):
    return build_toolset(cfg_for(tmp_path, journal={"source": "file", "path": str(crash_journal)}))


async def test_journal_query_filters_a_real_journal_file(journal_tools) -> None:
    r = await journal_tools.call("journal_query", {"unit": "myapp.service"})
    assert r.ok and r.data == {"entries": 12}, r.text
    assert all("myapp.service" in line for line in r.text.splitlines()) and "sshd" not in r.text
    r = await journal_tools.call("journal_query", {"unit": "myapp.service", "priority": "err"})
    assert r.data == {"entries": 6} and "Failed with result 'exit-code'" in r.text and "status=1" not in r.text
    # A severity word (what a small model copies from the incident) means the journal priority it maps to.
    for word, entries in (("high", 6), ("error", 6), ("critical", 0), ("medium", 12), ("low", 12)):
        r = await journal_tools.call("journal_query", {"unit": "myapp.service", "priority": word})
        assert r.ok and r.data.get("entries", 0) == entries, (word, r.text)
    r = await journal_tools.call("journal_query", {"grep": "Accepted publickey"})
    assert r.data == {"entries": 1} and "sshd.service[4242] p6: Accepted publickey for alice" in r.text
    r = await journal_tools.call("journal_query", {"lines": 2})
    assert r.data == {"entries": 2} and r.text.splitlines()[-1].endswith("from 10.0.0.5 port 51000")  # newest last
    r = await journal_tools.call("journal_query", {"since": "-1h", "until": "now", "unit": "sshd.service"})
    assert r.data == {"entries": 1}
    r = await journal_tools.call("journal_query", {"until": "-1d"})
    assert r.ok and r.text == "no matching journal entries"


@pytest.mark.parametrize(
    "args, field",
    [
        ({"unit": "x.service; rm -rf /"}, "unit"),
        ({"unit": "--help"}, "unit"),
        ({"grep": "a\nb"}, "grep"),
        ({"since": "--output=export"}, "since"),
        ({"since": "$(reboot)"}, "since"),
        ({"boot": "../../etc"}, "boot"),
        ({"lines": 100000}, "lines"),
        ({"lines": "5"}, "lines"),
        ({"priority": "everything"}, "priority"),
        ({"command": "rm"}, "command"),
    ],
)
async def test_hostile_journal_arguments_are_rejected_naming_the_field(journal_tools, args: dict, field: str) -> None:
    r = await journal_tools.call("journal_query", args)
    assert not r.ok and r.text.startswith(f"error: invalid argument {field}:"), r.text
    assert "Traceback" not in r.text


async def test_over_budget_output_is_cut_with_a_note(tmp_path: Path, journal_writer) -> None:
    path = journal_writer.write(
        tmp_path / "big.journal",
        [{"MESSAGE": f"request {i} took {i * 7} ms " + "x" * 80, "_SYSTEMD_UNIT": "web.service"} for i in range(300)],
    )
    cfg = cfg_for(tmp_path, journal={"source": "file", "path": str(path)}, roles={"meta": {"context_size": 2048}})
    tools = build_toolset(cfg)
    r = await tools.call("journal_query", {"lines": 300})
    assert r.ok and r.truncated and len(r.text) <= tools.max_chars
    assert "lines" in r.text and "to narrow: add unit, priority or grep" in r.text
    assert r.text.splitlines()[-1].startswith(time.strftime("%Y"))  # the newest lines are kept
    assert "request 299 " in r.text and "request 0 " in r.text


# ------------------------------------------------------------------ systemd in nspawn


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory):
    from rig.nspawn import Container, nspawn_root
    from rig.paths import PartMissing
    from rig.require import need

    try:
        root = nspawn_root()
    except PartMissing as exc:
        need(str(exc))
    c = Container(root=root, log_path=tmp_path_factory.mktemp("nspawn-meta") / "nspawn.log").start()
    try:
        c.write(
            "/etc/systemd/system/broken.service",
            "[Unit]\nDescription=fails at once\n[Service]\nType=oneshot\nExecStart=/bin/false\n",
        )
        c.write(
            "/etc/systemd/system/steady.service",
            "[Unit]\nDescription=runs\nAfter=network.target\n"
            "Wants=network.target\n[Service]\nExecStart=/bin/sleep infinity\n",
        )
        c.sh("systemctl daemon-reload && systemctl start steady.service; systemctl start broken.service; true")
        yield c
    finally:
        c.stop()


def container_tools(tmp_path: Path, c) -> Any:
    runner = Runner(prefix=["nsenter", "-t", str(c.leader), "-m", "-u", "-i", "-p", "-n", "-C", "--"], timeout=30)
    return build_toolset(cfg_for(tmp_path), runner=runner)


async def test_unit_status_failed_units_and_dependencies_on_real_systemd(tmp_path: Path, container) -> None:
    tools = container_tools(tmp_path, container)
    r = await tools.call("unit_status", {"unit": "broken.service"})
    assert r.ok, r.text
    props = r.data["properties"]
    assert (props["ActiveState"], props["Result"]) == ("failed", "exit-code")
    assert r.summary == "broken.service: failed/failed result=exit-code"
    r = await tools.call("unit_status", {"unit": "steady.service"})
    assert r.data["properties"]["ActiveState"] == "active" and int(r.data["properties"]["MainPID"]) > 0
    r = await tools.call("unit_status", {"unit": "nosuch.service"})
    assert r.ok and "not found" in r.text
    r = await tools.call("failed_units", {})
    assert r.ok and "broken.service" in [u["unit"] for u in r.data["units"]]
    r = await tools.call("unit_dependencies", {"unit": "steady.service"})
    assert r.ok and "network.target" in r.data["dependencies"]["Wants"]
    assert "network.target" in r.data["dependencies"]["After"]
    r = await tools.call("unit_dependencies", {"unit": "network.target", "reverse": True})
    assert r.ok and "steady.service" in r.data["dependencies"].get("WantedBy", [])


# ------------------------------------------------------------------ PostgreSQL: metrics, incidents, triggers


async def test_metrics_query_reads_the_real_store(tmp_path: Path, migrated) -> None:
    db, pool = migrated
    now = datetime.now(UTC)
    rows = [(now - timedelta(minutes=30 - i), "disk.used_percent", "/", 50.0 + i * 1.5) for i in range(30)]
    rows += [(now - timedelta(minutes=5), "cpu.percent", "", 12.5)]
    async with pool.connection() as conn, conn.cursor() as cur:
        await cur.executemany("INSERT INTO metrics (ts, name, subject, value) VALUES (%s, %s, %s, %s)", rows)
    tools = build_toolset(cfg_for(tmp_path, database=db), pool=pool)
    r = await tools.call("metrics_query", {})
    assert r.ok and r.data == {"series": 2}
    assert "disk.used_percent / 30 50 93.5 93.5" in r.text
    r = await tools.call(
        "metrics_query", {"name": "disk.used_percent", "subject": "/", "since": "1h", "step": "10m", "aggregate": "max"}
    )
    assert r.ok and 3 <= r.data["points"] <= 5 and r.summary.endswith("last 93.5")
    r = await tools.call("metrics_query", {"name": "disk.used_percent", "since": "1m"})
    assert r.ok and r.data == {"points": 0}
    r = await tools.call("metrics_query", {"name": "x'; DROP TABLE metrics;--"})
    assert not r.ok and "invalid argument name" in r.text
    r = await tools.call("metrics_query", {"name": "cpu.percent", "since": "999d"})
    assert not r.ok and "invalid argument since" in r.text


async def test_incident_history_and_trigger_templates(tmp_path: Path, migrated) -> None:
    from ai_sysadmin.store.incidents import IncidentStore
    from ai_sysadmin.store.lifecycle import open_store
    from rig.triggers import make_trigger

    db, pool = migrated
    cfg = cfg_for(tmp_path, database=db)
    store = await open_store(cfg)
    try:
        now = datetime.now(UTC) - timedelta(minutes=5)
        t1, t2 = make_trigger(1, at=now, count=4), make_trigger(2, at=now, unit="db.service")
        await store.triggers.record_triggers([t1, t2], cursor=None)  # stored before it returns (db is up)
    finally:
        await store.close()
    incident_id = await IncidentStore(pool).open(
        "nginx.service keeps failing", "high", "unit-failure", "nginx.service", [t1.id]
    )
    tools = build_toolset(cfg, pool=pool)
    r = await tools.call("trigger_templates", {"since": "1h"})
    assert r.ok and set(r.data["evidence_ids"]["trigger"]) == {t1.id, t2.id}
    assert "x4 high unit-failure unit=nginx.service" in r.text and "worker <*> exited with status 1" in r.text
    r = await tools.call("trigger_templates", {"unit": "db.service"})
    assert r.data["evidence_ids"]["trigger"] == [t2.id]
    r = await tools.call("incident_history", {})
    assert r.ok and r.data["evidence_ids"]["incident"] == [str(incident_id)]
    r = await tools.call("incident_history", {"incident_id": incident_id})
    assert r.ok and f"trigger {t1.id}" in r.text and r.data["evidence_ids"]["trigger"] == [t1.id]
    r = await tools.call("incident_history", {"incident_id": incident_id + 100})
    assert not r.ok and "invalid argument incident_id" in r.text


async def test_propose_action_only_proposes_through_the_policy(tmp_path: Path, migrated) -> None:
    from ai_sysadmin.actions.proposals import ActionService

    db, pool = migrated
    cfg = cfg_for(tmp_path, database=db, autonomy_level="suggest")
    tools = build_toolset(cfg, pool=pool, proposer=ActionService(cfg, pool))
    r = await tools.call(
        "propose_action", {"action": "restart_unit", "params": {"unit": "nginx.service"}, "reason": "crash loop"}
    )
    assert r.ok and r.data["proposal"]["decision"] == "queue" and r.data["proposal"]["risk"] == "low"
    assert r.data["proposal"]["source"] == "meta" and r.data["proposal"]["action_id"]
    r = await tools.call(
        "propose_action", {"action": "restart_unit", "params": {"unit": "nginx.service; reboot"}, "reason": "x"}
    )
    assert r.data["proposal"]["decision"] == "refuse" and "params.unit" in r.text
    r = await tools.call(
        "propose_action", {"action": "restart_unit", "params": {"unit": "sshd.service"}, "reason": "x"}
    )
    assert r.data["proposal"]["decision"] == "refuse"
    r = await tools.call("propose_action", {"action": "rm -rf /", "params": {}, "reason": "x"})
    assert not r.ok and "invalid argument action" in r.text
    async with pool.connection() as conn:
        statuses = [row[0] for row in await (await conn.execute("SELECT status FROM actions")).fetchall()]
    assert "queued" in statuses and not {"approved", "executing", "succeeded"} & set(statuses)


# ------------------------------------------------------------------ nix generations


async def test_generations_and_diff_from_a_real_nix_profile(tmp_path: Path, nix_profile) -> None:
    store_uri, profile, gens = nix_profile
    current, booted = tmp_path / "current-system", tmp_path / "booted-system"
    current.symlink_to(gens[2])
    booted.symlink_to(gens[1])
    cfg = cfg_for(
        tmp_path,
        meta={
            "system_profile": str(profile),
            "nix_store": store_uri,
            "current_system": str(current),
            "booted_system": str(booted),
        },
    )
    tools = build_toolset(cfg)
    r = await tools.call("nixos_generations", {})
    assert r.ok, r.text
    listed = {g["generation"]: g for g in r.data["generations"]}
    assert set(listed) == {1, 2}
    assert listed[2]["current_profile"] and listed[2]["running"] and not listed[2]["booted"]
    assert listed[1]["booted"] and listed[1]["store_path"] == str(gens[1])
    r = await tools.call("nixos_generation_diff", {"from": 1, "to": 2})
    assert r.ok, r.text
    assert "myapp: 1.0 → 2.0" in r.text and "nixos-system-test: 1.0 → 2.0" in r.text
    r = await tools.call("nixos_generation_diff", {"from": 1, "to": 7})
    assert not r.ok and "invalid argument to: generation 7 does not exist" in r.text
    r = await tools.call("nixos_generation_diff", {"from": 1, "to": "2; reboot"})
    assert not r.ok and "invalid argument to" in r.text
    missing = build_toolset(cfg_for(tmp_path, meta={"system_profile": str(tmp_path / "nope")}))
    r = await missing.call("nixos_generations", {})
    assert not r.ok and "no system profile" in r.text


# ------------------------------------------------------------------ disk and processes


async def test_largest_dirs_stays_under_the_allowed_roots(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for name, size in (("big", 3_000_000), ("mid", 1_000_000), ("small", 10_000)):
        (root / name).mkdir(parents=True)
        (root / name / "f").write_bytes(b"\0" * size)
    (root / "escape").symlink_to("/etc")
    tools = build_toolset(cfg_for(tmp_path, meta={"disk_paths": [str(root)]}))
    r = await tools.call("largest_dirs", {"path": str(root)})
    assert r.ok, r.text
    assert [Path(d["path"]).name for d in r.data["dirs"]] == ["big", "mid", "small"]
    for path in ("/etc", str(root / "escape"), f"{root}/../..", "/"):
        r = await tools.call("largest_dirs", {"path": path})
        assert not r.ok and "invalid argument path" in r.text, (path, r.text)
    r = await tools.call("disk_usage", {})
    assert r.ok and any(m["mount"] == "/" for m in r.data["mounts"])


def _exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): swap two names atomically, so the path never goes missing."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(a))


async def test_largest_dirs_measures_what_it_opened_while_a_symlink_is_swapped(tmp_path: Path) -> None:
    """A component of the checked path flips, atomically and as fast as a thread can, between a
    directory and a symlink to a tree outside the allowed root while largest_dirs runs: the other
    tree never shows (with `du` on the checked path it did)."""
    import threading

    from rig.require import need

    root, other = tmp_path / "allowed", tmp_path / "other"
    for base, prefix in ((root / "d", "mine"), (other, "secret")):
        for i in range(3):
            (base / "inner" / f"{prefix}-{i}").mkdir(parents=True)
            (base / "inner" / f"{prefix}-{i}" / "f").write_bytes(b"\0" * 8192 * (i + 1))
    d, link = root / "d", root / "d.link"
    link.symlink_to(other)
    try:
        _exchange(d, link)
        _exchange(d, link)
    except (AttributeError, OSError) as exc:
        need(f"renameat2(RENAME_EXCHANGE) not available here: {exc}")
    tools = build_toolset(cfg_for(tmp_path, meta={"disk_paths": [str(root)]}))
    stop = threading.Event()
    swaps = 0

    def swap() -> None:
        nonlocal swaps
        while not stop.is_set():
            _exchange(d, link)  # d: directory <-> symlink to the other tree
            swaps += 1

    t = threading.Thread(target=swap)
    t.start()
    seen, ok = set(), 0
    try:
        for _ in range(1000):
            r = await tools.call("largest_dirs", {"path": str(d / "inner")})
            assert "secret" not in r.text and "secret" not in str(r.data), r.text
            if r.ok:
                ok += 1
                seen |= {Path(x["path"]).name for x in r.data["dirs"]}
    finally:
        stop.set()
        t.join()
    assert swaps > 100, swaps  # the race really ran
    assert ok > 0 and seen == {"mine-0", "mine-1", "mine-2"}


async def test_top_processes_sees_a_memory_hog(tmp_path: Path) -> None:
    hog = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys,time; x = bytearray(400 * 1024 * 1024); "
            "x[::4096] = b'1' * len(x[::4096]); print('ready', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "ready"
        r = await build_toolset(cfg_for(tmp_path)).call("top_processes", {"sort_by": "memory", "limit": 25})
        assert r.ok and hog.pid in [p["pid"] for p in r.data["processes"]]
        rss = {p["pid"]: p["rss"] for p in r.data["processes"]}
        assert rss[hog.pid] > 300 * 1024 * 1024
    finally:
        hog.kill()
        hog.wait()


async def test_a_hung_command_times_out_and_is_killed() -> None:
    r = await Runner(timeout=0.5).run([sys.executable, "-c", "import time; time.sleep(60)"])
    assert r.timed_out and r.returncode is None
    with pytest.raises(ValueError):
        await Runner().run(["echo", "a\x00b"])
