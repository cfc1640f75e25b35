"""The fleet's journal transport on real systemd (issue 22): nspawn hub and two members.

Real `systemd-journal-upload` on each member, real `systemd-journal-remote` on the hub,
TLS with certificates made by openssl here (the members verify the hub's; the hub, built
without GnuTLS, verifies none), journal-remote writing one file per sending address
(`SplitMode=host`) into a directory of the test host, read with the host's
`journalctl --file` (rig/fleet.py says how each end is configured and how the containers
are networked).  Figures (boot, entries/s, what a kill -9 did) are printed:
run with `-s` to see them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from rig.fleet import SECRETS, UPLOAD_STATE, Fleet, fleet, hub_main_pid, numbers, start_sequence
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


def test_each_member_lands_in_its_own_file(fl: Fleet) -> None:
    for host_id, c in fl.members.items():
        start_sequence(c, "fleet-sep", f"sep-{host_id}", 50)
    wait_until(lambda: all(fl.last_message(h, f"sep-{h}") == f"sep-{h} 50" for h in fl.members), 180, "both on the hub")
    # one file per sender, named after its address (this journal-remote checks no certificate)
    assert _live_files(fl) == {fl.file_name(A), fl.file_name(B)}
    for mine, other in ((A, B), (B, A)):
        entries = fl.entries(mine)
        assert sorted(numbers(entries, f"sep-{mine}")) == list(range(1, 51))
        assert numbers(entries, f"sep-{other}") == []
        assert not [e for e in entries if e.get("_HOSTNAME") == other]
        assert {e["_HOSTNAME"] for e in entries if e.get("SYSLOG_IDENTIFIER") == f"sep-{mine}"} == {mine}


def test_journal_remote_checks_no_client_certificate_and_names_files_by_address(fl: Fleet) -> None:
    """What the hub's journal-remote trusts, as built by Debian (and nixpkgs): no GnuTLS, so
    `TrustedCertificateFile` is ignored ("Certificate checking disabled."), an upload with no
    client certificate at all is accepted, and it lands in the file of its source address,
    whatever `_HOSTNAME` it claims.  B, without its key, sends one entry claiming to be A."""
    version = fl.hub.run(["/lib/systemd/systemd-journal-remote", "--version"]).stdout
    assert "-GNUTLS" in version, version
    log = fl.hub.run(["journalctl", "-u", "systemd-journal-remote.service", "-o", "cat", "--no-pager"]).stdout
    assert "Certificate checking disabled." in log, log[-2000:]
    b = fl.members[B]
    marker = "unauthenticated-upload-marker"
    b.write(
        "/tmp/forged.export",
        f"__REALTIME_TIMESTAMP={int(time.time() * 1e6)}\n_HOSTNAME={A}\nSYSLOG_IDENTIFIER=forged\nMESSAGE={marker}\n\n",
    )
    # B's own journal-upload.conf (URL, its key) hidden: this upload names no key at all
    hide = 'mount --bind /dev/null /etc/systemd/journal-upload.conf && exec "$@"'
    upload = [
        "/lib/systemd/systemd-journal-upload",
        f"--url={fl.url}",
        f"--trust={SECRETS}/ca.pem",
        "--key=-",
        "--cert=-",
    ]
    r = b.run(["unshare", "-m", "--", "sh", "-c", hide, "sh", *upload, "/tmp/forged.export"], timeout=120)
    assert r.returncode == 0, r.stderr  # accepted: no client certificate was asked for
    wait_until(lambda: fl.last_message(B, "forged") == marker, 180, "the entry in B's address's file")
    forged = [e for e in fl.entries(B) if e.get("MESSAGE") == marker]
    assert len(forged) == 1 and forged[0]["_HOSTNAME"] == A  # the claim is stored as sent
    assert [e for e in fl.entries(A) if e.get("MESSAGE") == marker] == []  # but not in A's file
    assert _live_files(fl) == {fl.file_name(A), fl.file_name(B)}
    print(f"\nFIGURE upload without a client certificate: accepted (exit 0), stored in {fl.file_name(B)}")


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


@pytest.mark.parametrize(
    ("n", "pause", "ident"),
    [(2_000, 0.002, "paced"), (60_000, 0.0, "burst")],
    ids=["paced-2000", "burst-60000"],
)
def test_kill_9_of_journal_remote_mid_stream_loses_nothing(fl: Fleet, n: int, pause: float, ident: str) -> None:
    """A writes `n` numbered entries (paced: journal-upload keeps up and sends short POSTs;
    burst: it streams a backlog in long POSTs); journal-remote is SIGKILLed once a tenth of
    them is on the hub.  The socket (held by the hub's PID 1) starts it again on the next
    connection; every number arrives, and any copy is the same source entry sent again."""
    a = fl.members[A]
    unit = f"fleet-{ident}"
    restarts_before = _upload_restarts(a)
    state_before = a.run(["cat", UPLOAD_STATE]).stdout.strip()
    start_sequence(a, unit, ident, n, pause=pause)

    def newest() -> int:
        last = fl.last_message(A, ident)
        return int(last.split()[1]) if last else 0

    wait_until(lambda: newest() >= n // 10, 120, "stream flowing", poll=0.05)
    old = hub_main_pid(fl)
    assert old > 0
    assert fl.hub.run(["kill", "-9", str(old)]).returncode == 0
    writer_active_at_kill = unit_state(a, f"{unit}.service") == "active"
    at_kill = newest()
    wait_until(lambda: unit_state(a, f"{unit}.service") != "active", 120, "A's writer done")
    wait_until(lambda: newest() == n, 180, "the last number on the hub", poll=0.2)
    assert hub_main_pid(fl) not in (0, old)  # a new journal-remote, started by its socket
    assert at_kill < n, at_kill
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
    upload_log = a.run(["journalctl", "-u", "systemd-journal-upload.service", "-o", "cat", "--no-pager"]).stdout
    print(
        f"\nFIGURE kill -9 ({ident}): newest on the hub at the kill: {at_kill} of {n} (writer still writing: "
        f"{writer_active_at_kill}); after: {len(entries)} entries, {len(got)} distinct, {doubles} doubles; "
        f"journal-upload restarts: {_upload_restarts(a) - restarts_before}; files: "
        f"{sorted(p.name for p in fl.host_files(A))}"
    )
    print(f"FIGURE upload state before: {state_before!r}; after: {a.run(['cat', UPLOAD_STATE]).stdout.strip()!r}")
    print("FIGURE upload log tail:\n" + "\n".join(upload_log.splitlines()[-6:]))


def _upload_restarts(c: Container) -> int:
    r = c.run(["systemctl", "show", "-p", "NRestarts", "--value", "systemd-journal-upload.service"])
    return int(r.stdout.strip() or 0)
