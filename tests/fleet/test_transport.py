"""The fleet's journal transport on real systemd (issue 22): nspawn hub and two members.

Real `systemd-journal-upload` on each member, real `systemd-journal-remote` on the hub,
mutual TLS with certificates made by openssl here, journal-remote writing one file per
sending host (`SplitMode=host`) into a directory of the test host, read with the host's
`journalctl --file` (rig/fleet.py says how each end is configured and why the containers
share the host's network).  Figures (boot, entries/s, what a kill -9 did) are printed:
run with `-s` to see them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from rig.fleet import (
    SECRETS,
    UPLOAD_STATE,
    Fleet,
    Pki,
    fleet,
    hub_main_pid,
    install_secret,
    numbers,
    start_sequence,
)
from rig.net import wait_until
from rig.nspawn import Container, nspawn_root, unit_state
from rig.paths import PartMissing
from rig.require import need

pytestmark = pytest.mark.slow

A, B = "member-a", "member-b"


@pytest.fixture(scope="module")
def fl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    try:
        root = nspawn_root()
    except PartMissing as exc:
        need(str(exc))
    with fleet(root, tmp_path_factory.mktemp("fleet")) as f:
        print(f"\nFIGURE boot of hub + 2 members (parallel): {f.boot_seconds:.1f}s; configure: {f.config_seconds:.1f}s")
        yield f


def _member_has(c: Container, identifier: str, last: str) -> bool:
    r = c.run(["journalctl", "-n", "1", "-o", "cat", "--no-pager", f"SYSLOG_IDENTIFIER={identifier}"])
    return r.stdout.strip() == last


def _live_files(f: Fleet) -> set[str]:
    """The files journal-remote writes now (not the ones it set aside)."""
    return {p.name for p in f.journal_dir.iterdir() if "@" not in p.name}


def test_each_member_lands_in_its_own_file_named_by_its_certificate(fl: Fleet) -> None:
    for host_id, c in fl.members.items():
        start_sequence(c, "fleet-sep", f"sep-{host_id}", 50)
    wait_until(lambda: all(fl.last_message(h, f"sep-{h}") == f"sep-{h} 50" for h in fl.members), 60, "both on the hub")
    # journal-remote names each file after the client certificate's DN: CN = the host id
    assert _live_files(fl) == {f"remote-CN={A}.journal", f"remote-CN={B}.journal"}
    for mine, other in ((A, B), (B, A)):
        entries = fl.entries(mine)
        assert sorted(numbers(entries, f"sep-{mine}")) == list(range(1, 51))
        assert numbers(entries, f"sep-{other}") == []
        assert not [e for e in entries if e.get("_HOSTNAME") == other]
        assert {e["_HOSTNAME"] for e in entries if e.get("SYSLOG_IDENTIFIER") == f"sep-{mine}"} == {mine}


def test_a_member_without_a_valid_client_certificate_is_refused(fl: Fleet, tmp_path: Path) -> None:
    """B, uploading once without a client certificate, then as "member-a" with a certificate of
    another CA: journal-remote answers 401 both times and writes nothing; only B's own upload
    carries B's entries, into B's file."""
    b = fl.members[B]
    rogue = Pki(tmp_path, "rogue-ca").issue(A)
    install_secret(b, rogue.cert, f"{SECRETS}/rogue.pem")
    install_secret(b, rogue.key, f"{SECRETS}/rogue.key", mode="0600")
    marker = "refused-upload-marker"
    assert b.run(["logger", "-t", "fleet-rogue", marker]).returncode == 0
    wait_until(lambda: _member_has(b, "fleet-rogue", marker), 30, "marker in B's journal")
    upload = ["/lib/systemd/systemd-journal-upload", f"--url={fl.url}", "--follow=no", f"--trust={SECRETS}/ca.pem"]
    for creds in (["--key=-"], [f"--key={SECRETS}/rogue.key", f"--cert={SECRETS}/rogue.pem"]):
        r = b.run([*upload, *creds], timeout=120)
        assert r.returncode != 0, r.stderr
        assert "failed" in r.stderr, r.stderr
        print(f"\nFIGURE refused upload ({creds[0]}): {r.stderr.strip().splitlines()[-1]}")
    # B's own upload delivers the marker to B's file; nothing reached A's file or a new one
    wait_until(lambda: fl.last_message(B, "fleet-rogue") == marker, 60, "B's marker in B's file")
    assert _live_files(fl) == {f"remote-CN={A}.journal", f"remote-CN={B}.journal"}
    assert [e for e in fl.entries(A) if e.get("MESSAGE") == marker] == []
    assert len([e for e in fl.entries(B) if e.get("MESSAGE") == marker]) == 1
    log = fl.hub.run(["journalctl", "-u", "systemd-journal-remote.service", "-o", "cat", "--no-pager"]).stdout
    assert "Client is not authorized" in log or "Authorization through certificate is required" in log, log[-2000:]


def test_throughput_upload_to_remote(fl: Fleet) -> None:
    n = 20_000
    b = fl.members[B]
    t0 = time.monotonic()
    start_sequence(b, "fleet-rate", "rate", n)
    wait_until(lambda: _member_has(b, "rate", f"rate {n}"), 300, "B's journal has them all", poll=0.1)
    t_member = time.monotonic()
    wait_until(lambda: fl.last_message(B, "rate") == f"rate {n}", 300, "the hub has them all", poll=0.1)
    t_hub = time.monotonic()
    got = Counter(numbers(fl.entries(B, "SYSLOG_IDENTIFIER=rate"), "rate"))
    assert set(got) == set(range(1, n + 1)) and set(got.values()) == {1}
    print(
        f"\nFIGURE {n} entries: in B's journal after {t_member - t0:.2f}s, in the hub's file after "
        f"{t_hub - t0:.2f}s: {n / (t_hub - t0):.0f} entries/s end to end"
    )


def test_kill_9_of_journal_remote_mid_stream_loses_nothing(fl: Fleet) -> None:
    """A writes 2,000 numbered entries, paced; journal-remote is SIGKILLed while they flow.
    The socket (held by the hub's PID 1) starts it again when journal-upload, restarted by
    `Restart=always`, reconnects and resumes from its saved cursor: every number arrives."""
    n, ident = 2_000, "seq"
    a = fl.members[A]
    state_before = a.run(["cat", UPLOAD_STATE]).stdout.strip()
    start_sequence(a, "fleet-seq", ident, n, pause=0.002)

    def on_hub() -> list[int]:
        return numbers(fl.entries(A, f"SYSLOG_IDENTIFIER={ident}"), ident)

    wait_until(lambda: len(on_hub()) >= 200, 120, "stream flowing", poll=0.2)
    old = hub_main_pid(fl)
    assert old > 0
    assert fl.hub.run(["kill", "-9", str(old)]).returncode == 0
    writer_active_at_kill = unit_state(a, "fleet-seq.service") == "active"
    at_kill = len(on_hub())
    wait_until(lambda: hub_main_pid(fl) not in (0, old), 120, "journal-remote back (socket activation)", poll=0.2)
    wait_until(lambda: unit_state(a, "fleet-seq.service") != "active", 120, "A's writer done")
    wait_until(
        lambda: set(on_hub()) == set(range(1, n + 1)),
        180,
        "every number on the hub",
        poll=0.5,
    )
    assert writer_active_at_kill and at_kill < n, (writer_active_at_kill, at_kill)
    entries = fl.entries(A, f"SYSLOG_IDENTIFIER={ident}")
    got = Counter(numbers(entries, ident))
    assert set(got) == set(range(1, n + 1))  # nothing lost
    # A copy is the same source entry sent again (journal-upload resends from its last
    # acknowledged cursor): the source's boot id and timestamps, which journal-remote keeps,
    # tell it apart from a new entry, so a reader that drops repeats of that identity sees
    # each entry once.
    identity = {(e["_BOOT_ID"], e["__MONOTONIC_TIMESTAMP"], e["__REALTIME_TIMESTAMP"], e["MESSAGE"]) for e in entries}
    assert sorted(int(m.split()[1]) for *_, m in identity) == list(range(1, n + 1))
    doubles = sum(c - 1 for c in got.values())
    restarts = a.run(["systemctl", "show", "-p", "NRestarts", "--value", "systemd-journal-upload.service"]).stdout
    upload_log = a.run(["journalctl", "-u", "systemd-journal-upload.service", "-o", "cat", "--no-pager"]).stdout
    print(
        f"\nFIGURE kill -9 of journal-remote: {at_kill} of {n} on the hub at the kill; after: {len(entries)} entries, "
        f"{len(got)} distinct, {doubles} doubles (re-sent by journal-upload), journal-upload restarts: "
        f"{restarts.strip()}; files: {sorted(p.name for p in fl.host_files(A))}"
    )
    print(f"FIGURE upload state before: {state_before!r}; after: {a.run(['cat', UPLOAD_STATE]).stdout.strip()!r}")
    print("FIGURE upload log tail:\n" + "\n".join(upload_log.splitlines()[-8:]))
