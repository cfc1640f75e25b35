"""A hub's L1 over real member journal files, named as systemd-journal-remote names them (SplitMode=host).

The files are real `.journal` files written by systemd-journal-remote (rig/journal.py);
the reader is the real journalctl.  The host of every trigger is the file's, the cursor
and checkpoint state are per host, and a host whose file appears later is followed
without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.compose.run import l1
from ai_sysadmin.config import parse_config
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.trigger.follower import TriggerFollower
from ai_sysadmin.trigger.hub import HubL1, MemberFollower, stream_of
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.reader import JournalSource, read_lines
from ai_sysadmin.trigger.remote_names import HostNames, UnmappedName, host_of, remote_file_name, sender_of
from ai_sysadmin.trigger.sink import JsonlTriggerSink, TriggerSink
from rig.journal import JournalWriter
from rig.net import free_port, wait_until
from rig.proc import exit_report, spawn_logged
from tests.conftest import make_config
from tests.trigger.helpers import T0_USEC, Taken, entry

RULES = ("rule:resource-exhausted", "rule:unit-start-failed")


def lines(n: int, tag: str = "") -> list[dict[str, Any]]:
    """n entries, every one a rule hit (so the rule triggers' counts add up to n) -- one rule each half."""
    out = []
    for i in range(n):
        if i % 2:
            out.append(
                entry(f"worker {tag}{i} accept4() failed (24: Too many open files)", ident="web", unit="web.service")
            )
        else:
            out.append(
                entry(
                    "db.service: Main process exited, code=exited, status=1/FAILURE",
                    ident="systemd",
                    priority=4,
                    UNIT="db.service",
                )
            )
    return out


def write(writer: JournalWriter, directory: Path, sender: str, n: int, start: int, **kw: Any) -> Path:
    """Append n rule-hit entries to `sender`'s live file, as journal-remote would name it."""
    return writer.write(directory / remote_file_name(sender), lines(n, f"{start}-"), start_usec=start, **kw)


def follower(directory: Path, sink: TriggerSink, state: Path | None, **kw: Any) -> MemberFollower:
    cfg = parse_config(
        {"state_dir": str(state or "/nonexistent"), "trigger": {"model": False, "commit_interval": 0.1}}, env={}
    )
    return MemberFollower(cfg.trigger, str(directory), sink, state_dir=str(state) if state else None, model=None, **kw)


async def drain(f: MemberFollower) -> None:
    """Poll until a round reads nothing more, then checkpoint every host."""
    while await f.poll():
        pass
    await f.commit()


def rule_counts(triggers: dict[str, Trigger]) -> Counter[str]:
    """Per host: occurrences recorded by the rules (every test entry is exactly one rule hit)."""
    c: Counter[str] = Counter()
    for t in triggers.values():
        if t.source in RULES:
            c[t.host or "?"] += t.count
    return c


def last_cursor(path: Path) -> str:
    *_, line = read_lines(JournalSource("file", str(path)))
    return json.loads(line)["__CURSOR"]


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- file name -> host


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("remote-CN=web-1.journal", "web-1"),
        ("remote-O=Example\\x20Org,CN=db.example.org.journal", "db.example.org"),
        ("remote-CN=web-1@0123456789abcdef0123456789abcdef-0000000000000001-0005f1e2d3c4b5a6.journal", "web-1"),
        ("remote-CN=web-1@0005f1e2d3c4b5a6-1234567890abcdef.journal~", "web-1"),
        ("remote-10.0.0.7.journal", "10.0.0.7"),
    ],
)
def test_file_name_to_host(name: str, host: str) -> None:
    assert host_of(name) == host


@pytest.mark.parametrize(
    "name",
    [
        "system.journal",  # not journal-remote's
        "remote-O=Example.journal",  # a certificate without a CN
        "remote-O=A,CN=x,CN=y.journal",  # two CNs: which one is it?
        "remote-fe80::1.journal",  # an IPv6 peer: ':' is no host character
        "remote-CN=web\\x201.journal",  # a space in the CN
        "remote-CN=" + "a" * 64 + ".journal",  # longer than a host id may be
        "remote-CN=-web.journal",  # must start with a letter or digit
    ],
)
def test_names_without_a_host_are_refused(name: str) -> None:
    with pytest.raises(UnmappedName):
        host_of(name)


def test_fleet_members_map_senders_to_host_ids() -> None:
    names = HostNames({"10.213.0.2": "web-1", "O=Example Org,CN=db": "db-1"})
    assert names.host_of("remote-10.213.0.2.journal") == "web-1"
    assert names.host_of(f"remote-10.213.0.2@{'ab' * 16}-{1:016x}-{T0_USEC:016x}.journal") == "web-1"
    assert names.host_of(remote_file_name("O=Example Org,CN=db")) == "db-1"  # the whole sender, unescaped
    for unknown in ("remote-10.213.0.9.journal", "remote-web-1.journal", "remote-CN=db.journal"):
        with pytest.raises(UnmappedName, match=r"not in fleet\.members"):
            names.host_of(unknown)
    assert HostNames().host_of("remote-10.213.0.2.journal") == "10.213.0.2"  # no map: the sender is the host


def test_remote_file_name_escapes_as_journal_remote() -> None:
    # xescape(s, "/ "): backslash, '/', space, control and non-ASCII bytes as \xHH.
    assert remote_file_name("O=A B/C\\D,CN=h") == "remote-O=A\\x20B\\x2fC\\x5cD,CN=h.journal"
    assert sender_of(remote_file_name("O=Ünï,CN=h")) == "O=Ünï,CN=h"


# ---------------------------------------------------------------- following members


async def test_each_trigger_carries_the_host_of_its_file(journal_writer: JournalWriter, tmp_path: Path) -> None:
    d = tmp_path / "remote"
    a = write(journal_writer, d, "CN=hostA", 40, T0_USEC, hostname="box")
    b = write(journal_writer, d, "CN=hostB", 60, T0_USEC, hostname="box")
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    f = follower(d, sink, tmp_path / "state")
    await drain(f)

    assert rule_counts(sink.triggers()) == {"hostA": 40, "hostB": 60}
    assert await sink.load_cursor(stream_of("hostA")) == last_cursor(a)
    assert await sink.load_cursor(stream_of("hostB")) == last_cursor(b)
    assert f.host_report()["hostA"]["entries"] == 40 and f.host_report()["hostB"]["entries"] == 60
    for host in ("hostA", "hostB"):
        assert list((tmp_path / "state/trigger/members" / host / "checkpoints").glob("checkpoint-*.json"))


async def test_a_forged_hostname_stays_the_host_of_the_file(journal_writer: JournalWriter, tmp_path: Path) -> None:
    d = tmp_path / "remote"
    write(journal_writer, d, "CN=hostA", 30, T0_USEC, hostname="hostB")  # hostA claims to be hostB
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    await drain(follower(d, sink, None))

    triggers = sink.triggers().values()
    assert triggers and {t.host for t in triggers} == {"hostA"}
    assert await sink.load_cursor(stream_of("hostB")) is None


async def test_the_same_rule_on_two_hosts_is_two_triggers(journal_writer: JournalWriter, tmp_path: Path) -> None:
    d = tmp_path / "remote"
    # The very same entries (times, units, text) on both hosts.
    for sender in ("CN=hostA", "CN=hostB"):
        journal_writer.write(d / remote_file_name(sender), lines(20, "same"), start_usec=T0_USEC, boot_id="1" * 32)
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    await drain(follower(d, sink, None))

    by_rule: dict[str, list[Trigger]] = {}
    for t in sink.triggers().values():
        by_rule.setdefault(t.source, []).append(t)
    for rule in RULES:
        assert sorted(t.host or "" for t in by_rule[rule]) == ["hostA", "hostB"], rule
        assert len({t.id for t in by_rule[rule]}) == 2
        assert by_rule[rule][0].count == by_rule[rule][1].count == 10


async def test_a_host_that_appears_later_is_followed_without_restart(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    d = tmp_path / "remote"
    a = write(journal_writer, d, "CN=hostA", 10, T0_USEC)
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    f = follower(d, sink, tmp_path / "state", poll_interval=0.05)
    task = asyncio.create_task(f.run())

    async def counts_are(want: dict[str, int]) -> bool:
        return rule_counts(sink.triggers()) == want

    async def cursor_at(host: str, path: Path) -> bool:
        return await sink.load_cursor(stream_of(host)) == last_cursor(path)

    try:
        await until(lambda: counts_are({"hostA": 10}), "hostA's first entries")
        # A third host's first upload (a certificate name with a space: escaped in the file name),
        # and new entries in hostA's live file, both while the follower runs.
        c = write(journal_writer, d, "O=Example Org,CN=hostC", 25, T0_USEC + 10_000_000)
        assert "\\x20" in c.name
        write(journal_writer, d, "CN=hostA", 5, T0_USEC + 20_000_000)
        await until(lambda: counts_are({"hostA": 15, "hostC": 25}), "hostC and hostA's new entries")
        await until(lambda: cursor_at("hostC", c), "hostC's cursor")
        await until(lambda: cursor_at("hostA", a), "hostA's cursor")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert f.scans > 1 and f.host_report()["hostA"]["read_errors"] == 0


async def test_restart_resumes_every_host_from_its_checkpoint(journal_writer: JournalWriter, tmp_path: Path) -> None:
    d = tmp_path / "remote"
    state = tmp_path / "state"
    write(journal_writer, d, "CN=hostA", 400, T0_USEC)
    write(journal_writer, d, "CN=hostB", 300, T0_USEC)
    sink_path = tmp_path / "triggers.jsonl"

    # First run: one turn of at most 150 entries per host, checkpointed, then stopped.
    first = follower(d, JsonlTriggerSink(sink_path), state, max_per_turn=150)
    await first.poll()
    await first.commit()
    assert {h: r["entries"] for h, r in first.host_report().items()} == {"hostA": 150, "hostB": 150}

    # Written while the hub was down: more for hostA, and hostA's live file rotated the way
    # journal-remote archives it (renamed to remote-<host>@<seqnum id>-<seqnum>-<time>.journal).
    live = d / remote_file_name("CN=hostA")
    live.rename(d / remote_file_name("CN=hostA").replace(".journal", f"@{'ab' * 16}-{1:016x}-{T0_USEC:016x}.journal"))
    write(journal_writer, d, "CN=hostA", 50, T0_USEC + 30_000_000)

    second = follower(d, JsonlTriggerSink(sink_path), state)
    await drain(second)
    # Each entry read exactly once across both runs: nothing lost, nothing doubled.
    assert {h: r["entries"] for h, r in second.host_report().items()} == {"hostA": 300, "hostB": 150}
    assert rule_counts(JsonlTriggerSink(sink_path).triggers()) == {"hostA": 450, "hostB": 300}
    assert await JsonlTriggerSink(sink_path).load_cursor(stream_of("hostA")) == last_cursor(live)


async def test_unmappable_file_names_are_skipped_with_a_log_line(
    journal_writer: JournalWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    d = tmp_path / "remote"
    write(journal_writer, d, "CN=hostA", 10, T0_USEC)
    write(journal_writer, d, "O=No Common Name", 10, T0_USEC)
    write(journal_writer, d, "fe80::1", 10, T0_USEC)
    write(journal_writer, d, "CN=hub", 10, T0_USEC)  # a member speaking for the hub itself
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    f = follower(d, sink, None, own_host="hub")
    with caplog.at_level(logging.WARNING, logger="ai_sysadmin.trigger.hostset"):
        await drain(f)
        await drain(f)  # each refused name is logged once, not every round
    skipped = [r.getMessage() for r in caplog.records if "journal file skipped" in r.getMessage()]
    assert len(skipped) == 3, skipped
    assert any("O=No\\\\x20Common\\\\x20Name" in m and "no single CN" in m for m in skipped), skipped
    assert any("fe80::1" in m and "is not a host id" in m for m in skipped), skipped
    assert any("hub's own host id" in m for m in skipped), skipped
    assert set(f.lanes) == {"hostA"} and rule_counts(sink.triggers()) == {"hostA": 10}


async def test_postgres_rows_and_cursors_are_per_host(
    journal_writer: JournalWriter, tmp_path: Path, pg_database: dict[str, Any]
) -> None:
    d = tmp_path / "remote"
    a = write(journal_writer, d, "CN=hostA", 20, T0_USEC, hostname="hostB")
    b = write(journal_writer, d, "CN=hostB", 30, T0_USEC)
    cfg = make_config(tmp_path, database=pg_database)
    store = await open_store(cfg)
    try:
        await drain(follower(d, store.triggers, tmp_path / "state"))
        async with store.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT host, sum(count) FROM triggers WHERE source = ANY(%s) GROUP BY host ORDER BY host",
                    (list(RULES),),
                )
            ).fetchall()
            cursors = dict(await (await conn.execute("SELECT stream, cursor FROM cursors")).fetchall())
    finally:
        await store.close()
    assert rows == [("hostA", 20), ("hostB", 30)]
    assert cursors[stream_of("hostA")] == last_cursor(a) and cursors[stream_of("hostB")] == last_cursor(b)


# ---------------------------------------------------------------- the service's L1 on a hub


async def test_a_hub_follows_its_own_journal_and_every_member(journal_writer: JournalWriter, tmp_path: Path) -> None:
    # The hub's machine calls itself `hubbox`; its fleet id is `hub`: its own triggers are `hub`'s.
    own = journal_writer.write(tmp_path / "own" / "system.journal", lines(8), start_usec=T0_USEC, hostname="hubbox")
    d = tmp_path / "remote"
    write(journal_writer, d, "CN=hostA", 12, T0_USEC)
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    base = {"journal": {"source": "file", "path": str(own)}, "trigger": {"model": False, "commit_interval": 0.1}}
    standalone = make_config(tmp_path, **base)
    assert isinstance(l1(standalone, sink, None), TriggerFollower)  # standalone (and member): unchanged

    hub = make_config(tmp_path, **base, fleet={"role": "hub", "host": "hub", "journal_dir": str(d)})
    # Two sinks here to tell the streams apart (the service gives both the incidents' tap).
    members = JsonlTriggerSink(tmp_path / "member-triggers.jsonl")
    follower = l1(hub, sink, None, member_sink=members)
    assert isinstance(follower, HubL1)
    task = asyncio.create_task(follower.run())

    async def both() -> bool:
        return rule_counts(sink.triggers()) == {"hub": 8} and rule_counts(members.triggers()) == {"hostA": 12}

    try:
        await until(both, "the hub's own triggers and hostA's")
        assert await sink.load_cursor("journal") == last_cursor(own)  # the hub's own stream, as before
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    report = follower.report()
    assert report["member_hosts"] == 1 and report["member_entries"] == 12 and report["entries"] == 8


async def test_a_hub_maps_member_addresses_to_their_host_ids(
    journal_writer: JournalWriter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """journal-remote without GnuTLS names files by address: fleet.members gives the host id the
    member's executor and role use; a sender not in the map (any machine that reaches the port) is
    no host."""
    own = journal_writer.write(tmp_path / "own" / "system.journal", lines(4), start_usec=T0_USEC)
    d = tmp_path / "remote"
    write(journal_writer, d, "10.213.0.2", 12, T0_USEC, hostname="web-1")
    write(journal_writer, d, "10.213.0.3", 6, T0_USEC, hostname="web-2")
    write(journal_writer, d, "10.213.0.9", 10, T0_USEC, hostname="web-1")  # not a member; claims to be one
    fleet = {
        "role": "hub",
        "host": "hub",
        "journal_dir": str(d),
        "members": {"10.213.0.2": "web-1", "10.213.0.3": "web-2"},
    }
    cfg = make_config(
        tmp_path,
        journal={"source": "file", "path": str(own)},
        trigger={"model": False, "commit_interval": 0.1},
        fleet=fleet,
    )
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    members = JsonlTriggerSink(tmp_path / "member-triggers.jsonl")
    hub = l1(cfg, sink, None, member_sink=members)
    assert isinstance(hub, HubL1)
    with caplog.at_level(logging.WARNING, logger="ai_sysadmin.trigger.hostset"):
        await drain(hub.members)
        await drain(hub.members)  # logged once, not every round
    assert rule_counts(members.triggers()) == {"web-1": 12, "web-2": 6}
    assert await members.load_cursor(stream_of("web-1")) is not None
    assert await members.load_cursor(stream_of("10.213.0.2")) is None
    skipped = [r.getMessage() for r in caplog.records if "journal file skipped" in r.getMessage()]
    assert skipped == [
        "hub: journal file skipped: 'remote-10.213.0.9.journal': not in fleet.members (sender '10.213.0.9')"
    ]
    assert set(hub.members.lanes) == {"web-1", "web-2"}


# ---------------------------------------------------------------- the real transport


async def test_what_journal_upload_sends_to_journal_remote_is_followed(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    """systemd-journal-upload -> a running systemd-journal-remote (SplitMode=host, plain HTTP as on a
    private network): journal-remote names the file after the peer, appends through mmap while the
    hub polls, and the member's own `_HOSTNAME` (here it claims to be the hub) changes nothing."""
    upload = journal_writer.binary.parent / "systemd-journal-upload"
    port = free_port()
    out = tmp_path / "remote"
    out.mkdir()
    log = tmp_path / "journal-remote.log"
    server = spawn_logged(
        [str(journal_writer.binary), f"--listen-http=127.0.0.1:{port}", f"--output={out}/", "--split-mode=host"], log
    )
    sink = JsonlTriggerSink(tmp_path / "triggers.jsonl")
    f = follower(out, sink, tmp_path / "state", own_host="hub", poll_interval=0.05)
    task = asyncio.create_task(f.run())
    try:
        wait_until(lambda: _listening(port), 30, "journal-remote's socket", alive=lambda: exit_report(server, log))
        member = tmp_path / "member" / "system.journal"
        for batch in (1, 2):
            journal_writer.write(
                member, lines(10, f"b{batch}-"), start_usec=T0_USEC + batch * 10_000_000, hostname="hub"
            )
            # --save-state: the second upload sends only what the first did not, as the service does.
            argv = [str(upload), f"--file={member}", f"--url=http://127.0.0.1:{port}", "--follow=no"]
            argv.append(f"--save-state={tmp_path / 'upload.state'}")
            sent = await asyncio.to_thread(subprocess.run, argv, capture_output=True, timeout=120)
            assert sent.returncode == 0, sent.stderr.decode(errors="replace")

            async def arrived(want: int = 10 * batch) -> bool:
                return rule_counts(sink.triggers()) == {"127.0.0.1": want}

            await until(arrived, f"upload {batch} as host 127.0.0.1")
        assert [p.name for p in out.iterdir()] == ["remote-127.0.0.1.journal"]
        # journal-upload's second start re-sent the entry at its saved cursor: in the file twice, counted once.
        assert f.host_report()["127.0.0.1"]["repeats"] == 1
        assert server.poll() is None, exit_report(server, log)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.terminate()
        server.wait(30)


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


# ---------------------------------------------------------------- a re-send after journal-remote was killed


def numbered(first: int, last: int, boot: str) -> list[dict[str, Any]]:
    """Source entries `n first..last` of one member boot, with the clocks journal-upload sends (n-th: +n us)."""
    return [
        entry(f"n {i}", __REALTIME_TIMESTAMP=T0_USEC + i, __MONOTONIC_TIMESTAMP=1_000_000 + i, _BOOT_ID=boot)
        for i in range(first, last + 1)
    ]


@pytest.mark.parametrize("restart", [False, True], ids=["one-run", "hub-restart-after-kill"])
@pytest.mark.parametrize("set_aside", [False, True], ids=["same-file", "file-set-aside"])
async def test_a_resend_after_journal_remote_was_killed_is_taken_in_once(
    journal_writer: JournalWriter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool, set_aside: bool
) -> None:
    """journal-remote killed mid-POST after storing entries 1..2000 of it; journal-upload re-sends
    from its last acknowledged cursor (entry 0): copies of 1..2000, then 2001..3000.  The new
    journal-remote appends to the same file, or (the kill caught a write) sets the file aside as
    `remote-<addr>@<time>-<random>.journal~` and starts a new one.  The hub had read 1..1200
    before the kill (the realistic order), and restarts after it or not.  Every entry is taken in once."""
    taken = Taken(monkeypatch)
    d, state, boot = tmp_path / "remote", tmp_path / "state", "ab" * 16
    sink_path = tmp_path / "triggers.jsonl"
    sender = "10.0.0.9"
    live = d / remote_file_name(sender)
    journal_writer.write(live, numbered(1, 1200, boot))
    f = follower(d, JsonlTriggerSink(sink_path), state)
    await drain(f)
    journal_writer.write(live, numbered(1201, 2000, boot))  # stored, then the kill
    if set_aside:
        live.rename(d / f"remote-{sender}@{T0_USEC + 2000:016x}-{'cd' * 8}.journal~")
    journal_writer.write(live, numbered(1, 3000, boot))  # the re-send and what followed
    if restart:
        f = follower(d, JsonlTriggerSink(sink_path), state)
    await drain(f)
    assert taken.counts() == Counter({f"n {i}": 1 for i in range(1, 3001)})
    over = [m for kind, m in taken.order if kind == "over"]
    assert f.host_report()[sender]["repeats"] == len(over)
    # What journalctl yields after the cursor: copies in the same file (a later sequence
    # number) come after it, every one; here, a new file written by another journal-remote
    # process sorts its copies next to the originals, and systemd 252's journalctl skips those
    # itself (on the real transport it yields them: tests/fleet/test_hub_ingest.py).
    assert len(over) == (0 if set_aside else 2000)
