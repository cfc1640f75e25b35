"""The hub's L1 over what the real transport wrote after journal-remote was killed (issue 22).

A member (nspawn, Debian 12, systemd 252) uploads a numbered backlog with the real
`systemd-journal-upload`; the hub's real `systemd-journal-remote` is SIGKILLed mid-POST;
journal-upload fails, restarts and re-sends from its last acknowledged cursor into a new
file next to the set-aside `…journal~` (docs/fleet.md "The transport, as tested").  The
hub's per-host L1 (`MemberFollower`, the one the service runs) reads the hub's directory
(bound from this host) part before the kill and the rest after, and takes in each numbered
entry exactly once.  Run with `-s` for the figures.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.hub import MemberFollower
from ai_sysadmin.trigger.sink import JsonlTriggerSink
from rig.fleet import Fleet, fleet, hub_main_pid, numbers, start_sequence
from rig.net import wait_until
from rig.nspawn import nspawn_root, unit_state
from rig.paths import PartMissing
from rig.require import need
from tests.trigger.helpers import Taken

pytestmark = pytest.mark.slow

A = "member-a"
N = 60_000
BEFORE = 2_000  # what the hub's L1 reads before the kill: one short turn, while the POST streams on


@pytest.fixture(scope="module")
def fl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    try:
        root = nspawn_root()
    except PartMissing as exc:
        need(str(exc))
    with fleet(root, tmp_path_factory.mktemp("fleet"), member_ids=(A,)) as f:
        yield f


def hub_l1(f: Fleet, state: Path, **kw: int) -> MemberFollower:
    cfg = parse_config({"state_dir": str(state), "trigger": {"model": False}}, env={})
    sink = JsonlTriggerSink(state / "triggers.jsonl")
    return MemberFollower(cfg.trigger, str(f.journal_dir), sink, state_dir=str(state), model=None, **kw)


async def drain(f: MemberFollower) -> int:
    n = 0
    while m := await f.poll():
        n += m
    await f.commit()
    return n


@pytest.mark.parametrize("restart", [False, True], ids=["one-l1", "l1-restarted-after-kill"])
async def test_hub_l1_takes_in_each_entry_once_after_a_kill_9(
    fl: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    ident = f"ingest{int(restart)}"
    a = fl.members[A]
    taken = Taken(monkeypatch)
    l1 = hub_l1(fl, tmp_path, max_per_turn=BEFORE)
    await drain(l1)  # up to date with what earlier tests left in the hub's files

    def newest() -> int:
        last = fl.last_message(A, ident)
        return int(last.split()[1]) if last else 0

    start_sequence(a, f"fleet-{ident}", ident, N)
    wait_until(lambda: newest() >= N // 10, 120, "the backlog flowing", poll=0.05)
    await l1.poll()  # the hub's L1 reads a first part while the POST streams on
    await l1.commit()
    read_before = sum(1 for _, m in taken.order if m.startswith(ident + " "))
    old = hub_main_pid(fl)
    assert old > 0 and fl.hub.run(["kill", "-9", str(old)]).returncode == 0
    at_kill = newest()
    wait_until(lambda: unit_state(a, f"fleet-{ident}.service") != "active", 120, "the writer done")
    wait_until(lambda: newest() == N, 300, "the last number on the hub", poll=0.2)
    assert at_kill < N, at_kill  # the kill cut the upload off
    in_files = Counter(numbers(fl.entries(A, f"SYSLOG_IDENTIFIER={ident}"), ident))
    assert set(in_files) == set(range(1, N + 1))
    if restart:
        l1 = hub_l1(fl, tmp_path)
    else:
        l1.max_per_turn = 20_000
    t0 = time.process_time()
    await drain(l1)
    cpu = time.process_time() - t0

    mine = [(kind, m) for kind, m in taken.order if m.startswith(ident + " ")]
    counts = Counter(int(m.split()[1]) for kind, m in mine if kind == "in")
    over = [int(m.split()[1]) for kind, m in mine if kind == "over"]
    # where journalctl yields a copy: right after its original (interleaved) or elsewhere
    next_to = sum(1 for (_, m1), (k2, m2) in itertools.pairwise(mine) if k2 == "over" and m1 == m2)
    print(
        f"\nFIGURE hub L1 after kill -9 (restart={restart}): on the hub at the kill: {at_kill}; read before the "
        f"kill: {read_before}; in the files: {sum(in_files.values())} entries, {len(in_files)} distinct; yielded "
        f"after: {len(mine) - read_before} of which passed over as copies: {len(over)} "
        f"(numbers {min(over, default=0)}..{max(over, default=0)}, "
        f"{next_to} right after their original); drain after: {cpu:.2f}s CPU; files: "
        f"{sorted(p.name for p in fl.host_files(A))}"
    )
    assert counts == Counter(range(1, N + 1))  # each numbered entry taken in exactly once
