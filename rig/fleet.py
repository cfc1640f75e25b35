"""A fleet in nspawn containers: one hub, its members, and journald's own transport (issue 22).

The hub runs Debian's real `systemd-journal-remote` (socket-activated by
`systemd-journal-remote.socket`), each member the real `systemd-journal-upload`, both from
the cached bookworm root (scripts/provision-nix.sh).  They are configured with the settings
the NixOS module gives nixpkgs' `services.journald.remote` / `services.journald.upload`
(module.nix, the hub and member sections; docs/fleet.md's tables):

* hub: `/etc/systemd/journal-remote.conf` `[Remote] SplitMode=host, ServerKeyFile,
  ServerCertificateFile, TrustedCertificateFile`; the unit's own
  `--listen-https=-3 --output=/var/log/journal/remote/` (the same ExecStart nixpkgs
  writes) and its socket's `ListenStream=19532`;
* member: `/etc/systemd/journal-upload.conf` `[Upload] URL, ServerKeyFile,
  ServerCertificateFile, TrustedCertificateFile`, and nixpkgs' `Restart=always`,
  `RestartSec=3sec` on the upload unit (Debian ships `Restart=on-failure`).

Keys live where docs/fleet.md's example puts them, readable the way it says: the hub's by
the group `systemd-journal-remote`, a member's by `systemd-journal` (the upload unit is a
dynamic user in that group).  Certificates are made here with openssl: one CA, a server
certificate for the hub, one client certificate per member whose CN is the member's host id.

Networking: each container has its own network namespace, its `host0` on one bridge that
systemd-nspawn makes on the test host for the fleet (`--network-zone=`, removed with the last
container); the rig brings that bridge up and gives each `host0` a static address in ZONE_NET with `ip addr` (the
cached root masks systemd-networkd, which would otherwise assign them).  The hub listens on
the packaged socket's own `ListenStream=19532`.  Members need addresses of their own: the
journal-remote of Debian and of nixpkgs is built without GnuTLS (`systemd-journal-remote
--version` says `-GNUTLS`; nixpkgs' systemd passes `-Dgnutls=disabled`), so it never asks for
a client certificate, ignores `TrustedCertificateFile`, and names each host's file after the
peer's address (`remote-<address>.journal`), not after a certificate.  On one shared
network namespace every member would be 127.0.0.1 and share one file.

The hub's output directory is a directory of the test host bound at
`/var/log/journal/remote`: the test reads the per-host files there with the host's
`journalctl --file`, as the hub's own readers would.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rig.net import wait_until
from rig.nspawn import Container, main_pid, unit_state
from rig.postgres import PgCluster

SECRETS = "/var/lib/secrets/journal"  # docs/fleet.md's example paths
REMOTE_DIR = "/var/log/journal/remote"  # fleet.hub.journalDirectory's default
ZONE_NET = "10.213.0"  # /24 on the fleet's own bridge: the hub .1, members .2, .3, ...
HUB_ADDRESS = f"{ZONE_NET}.1"
HUB_PORT = 19532  # the packaged socket's ListenStream= (nixpkgs' `services.journald.remote.port`)
HUB_ID = "hub"
# The test host on the fleet's bridge: where the hub's PostgreSQL listens (rig/fleet.py
# runs the hub's own services -- PostgreSQL, ai-sysadmin -- on the test host, which reads
# the hub container's journal-remote directory).
HUB_DB_ADDRESS = f"{ZONE_NET}.254"
# fleet.hostId: letters, digits, `.`, `_`, `-` (module.nix).  Checked before it reaches
# openssl's -subj, where `/` and `=` would mean something.
_HOST_ID = re.compile(r"[A-Za-z0-9._-]{1,63}")
# nixpkgs nixos/modules/system/boot/systemd/journald-upload.nix
UPLOAD_SERVICE_DROPIN = "[Service]\nRestart=always\nRestartSec=3sec\n"
# The members' journald keeps every line of the rig's numbered streams: its default burst
# (10,000 per 30 s, scaled by free space) dropped a 60,000-line stream after 32,500, and a
# unit's LogRateLimitIntervalSec=0 did not lift it on this systemd (252).
JOURNALD_NO_RATELIMIT = "[Journal]\nRateLimitIntervalSec=0\n"
# systemd-journal-upload's --save-state file of a DynamicUser unit with StateDirectory=.
UPLOAD_STATE = "/var/lib/private/systemd/journal-upload/state"


def _ok(r: subprocess.CompletedProcess[str], what: str) -> str:
    if r.returncode != 0:
        raise RuntimeError(f"{what}: exit {r.returncode}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def _openssl(*args: str | Path) -> None:
    _ok(subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60), "openssl")


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class KeyPair:
    key: Path
    cert: Path


class Pki:
    """A CA made with openssl in `workdir`, and the leaf certificates it signs."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        self.ca = KeyPair(self.dir / "ca.key", self.dir / "ca.pem")
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", self.ca.key, "-out", self.ca.cert, "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def issue(self, cn: str, *, ip: str | None = None) -> KeyPair:
        """A key and a certificate whose subject is exactly `CN=<cn>`; `ip`: a server's SAN."""
        if not _HOST_ID.fullmatch(cn):
            raise ValueError(f"not a host id: {cn!r}")
        pair = KeyPair(self.dir / f"{cn}.key", self.dir / f"{cn}.pem")
        csr, ext = self.dir / f"{cn}.csr", self.dir / f"{cn}.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n" + (f"subjectAltName=IP:{ip}\n" if ip else "")
        )
        _openssl(
            "req", "-new", "-newkey", "rsa:2048", "-nodes",
            "-keyout", pair.key, "-out", csr, "-subj", f"/CN={cn}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key,
            "-set_serial", str(secrets.randbits(63)), "-days", "2", "-extfile", ext, "-out", pair.cert,
        )  # fmt: skip
        return pair


def install_secret(c: Container, src: Path, dest: str, *, group: str = "root", mode: str = "0644") -> None:
    """Copy a PEM file of the test host into the container, owned by root:`group` with `mode`."""
    c.write(dest, src.read_text())
    _ok(c.run(["chown", f"root:{group}", dest]), f"chown {dest}")
    _ok(c.run(["chmod", mode, dest]), f"chmod {dest}")


# ---------------------------------------------------------------- configuration


def remote_conf(key: str, cert: str, trust: str) -> str:
    """journal-remote.conf as nixpkgs renders `services.journald.remote.settings` for a hub."""
    return (
        f"[Remote]\nSplitMode=host\nServerKeyFile={key}\nServerCertificateFile={cert}\nTrustedCertificateFile={trust}\n"
    )


def upload_conf(url: str, key: str, cert: str, trust: str) -> str:
    """journal-upload.conf as nixpkgs renders `services.journald.upload.settings` for a member."""
    return f"[Upload]\nURL={url}\nServerKeyFile={key}\nServerCertificateFile={cert}\nTrustedCertificateFile={trust}\n"


def set_host_name(c: Container, host_id: str) -> None:
    """The container's host name (its `_HOSTNAME`), as `networking.hostName` would be.

    PID 1 set it from the root's /etc/hostname at boot; journald follows the change."""
    c.write("/etc/hostname", host_id + "\n")
    _ok(c.run(["hostname", host_id]), "hostname")
    probe = f"host-name-probe-{secrets.token_hex(4)}"
    _ok(c.run(["logger", "-t", "fleet-probe", probe]), "logger")

    def journald_has_it() -> bool:
        r = c.run(["journalctl", "-t", "fleet-probe", "-o", "json", "--no-pager"])
        return any(json.loads(x).get("MESSAGE") == probe and json.loads(x).get("_HOSTNAME") == host_id
                   for x in r.stdout.splitlines())  # fmt: skip

    wait_until(journald_has_it, 30, f"journald names {host_id}", poll=0.1)


def configure_hub(hub: Container, pki: Pki) -> None:
    pair = pki.issue(HUB_ID, ip=HUB_ADDRESS)
    key, cert, trust = f"{SECRETS}/hub.key", f"{SECRETS}/hub.pem", f"{SECRETS}/ca.pem"
    install_secret(hub, pki.ca.cert, trust)
    install_secret(hub, pair.cert, cert)
    install_secret(hub, pair.key, key, group="systemd-journal-remote", mode="0640")
    hub.write("/etc/systemd/journal-remote.conf", remote_conf(key, cert, trust))
    _ok(hub.run(["systemctl", "enable", "--now", "systemd-journal-remote.socket"]), "enable journal-remote.socket")
    wait_until(lambda: unit_state(hub, "systemd-journal-remote.socket") == "active", 30, "journal-remote socket")


def set_address(c: Container, address: str) -> None:
    """`host0` up with `address`/24 (what systemd-networkd would do in the zone)."""
    _ok(c.run(["ip", "link", "set", "host0", "up"]), "ip link set host0 up")
    _ok(c.run(["ip", "addr", "add", f"{address}/24", "dev", "host0"]), "ip addr add")


def hub_reachable(m: Container, trust: str, url: str) -> bool:
    """The hub's socket answers over TLS with a certificate `trust` vouches for (any HTTP status)."""
    r = m.run(["curl", "--silent", "--output", "/dev/null", "--max-time", "5", "--cacert", trust, url])
    return r.returncode == 0


def configure_member(m: Container, pki: Pki, host_id: str, url: str) -> None:
    pair = pki.issue(host_id)
    key, cert, trust = f"{SECRETS}/{host_id}.key", f"{SECRETS}/{host_id}.pem", f"{SECRETS}/ca.pem"
    install_secret(m, pki.ca.cert, trust)
    install_secret(m, pair.cert, cert)
    install_secret(m, pair.key, key, group="systemd-journal", mode="0640")
    m.write("/etc/systemd/journald.conf.d/fleet-rig.conf", JOURNALD_NO_RATELIMIT)
    _ok(m.run(["systemctl", "restart", "systemd-journald.service"]), "restart journald")
    wait_until(lambda: hub_reachable(m, trust, url), 60, f"{host_id} reaches the hub", poll=0.2)
    m.write("/etc/systemd/journal-upload.conf", upload_conf(url, key, cert, trust))
    m.write("/etc/systemd/system/systemd-journal-upload.service.d/nixpkgs.conf", UPLOAD_SERVICE_DROPIN)
    _ok(m.run(["systemctl", "daemon-reload"]), "daemon-reload")
    _ok(m.run(["systemctl", "enable", "--now", "systemd-journal-upload.service"]), "enable journal-upload")
    wait_until(lambda: unit_state(m, "systemd-journal-upload.service") == "active", 30, "journal-upload running")


# ---------------------------------------------------------------- the fleet


@dataclass
class Fleet:
    hub: Container
    members: dict[str, Container]  # host id -> its container
    addresses: dict[str, str]  # host id -> its address on the fleet's bridge
    journal_dir: Path  # the hub's REMOTE_DIR, on the test host
    pki: Pki
    boot_seconds: float  # the three containers, booted side by side
    config_seconds: float  # certificates, host names, both ends configured
    bridge: str = ""  # the zone's bridge on the test host (`vz-<zone>`)

    @property
    def url(self) -> str:
        return f"https://{HUB_ADDRESS}:{HUB_PORT}"

    def file_name(self, host_id: str) -> str:
        """The file journal-remote writes for this member: named after its address."""
        return f"remote-{self.addresses[host_id]}.journal"

    def host_files(self, host_id: str) -> list[Path]:
        """The hub's journal files for one sender: `remote-<address>.journal`, and the files
        journal-remote set aside (`remote-<address>@….journal~` after an unclean stop, or rotated)."""
        base = self.file_name(host_id).removesuffix(".journal")
        names = (p for p in self.journal_dir.iterdir() if p.name == f"{base}.journal" or p.name.startswith(base + "@"))
        return sorted(names)

    def entries(self, host_id: str, *matches: str) -> list[dict[str, Any]]:
        """The hub's entries from `host_id` (journalctl matches, e.g. `SYSLOG_IDENTIFIER=x`), as JSON."""
        files = self.host_files(host_id)
        if not files:
            return []
        argv = ["journalctl", *(f"--file={f}" for f in files), "-o", "json", "--no-pager", *matches]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        _ok(r, "journalctl on the hub's files")
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def last_message(self, host_id: str, identifier: str) -> str | None:
        """The newest MESSAGE from `identifier` in the hub's files for `host_id` (cheap: -n 1)."""
        files = self.host_files(host_id)
        if not files:
            return None
        argv = ["journalctl", *(f"--file={f}" for f in files), "-n", "1", "-o", "cat", "--no-pager"]
        r = subprocess.run([*argv, f"SYSLOG_IDENTIFIER={identifier}"], capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not r.stdout.strip():
            return None
        return r.stdout.strip()


def start_sequence(c: Container, unit: str, identifier: str, count: int, pause: float = 0.0) -> None:
    """`count` numbered lines ("<identifier> <n>") to the container's journal, from a transient
    service (`pause` seconds apart: a paced stream)."""
    if not _HOST_ID.fullmatch(identifier) or not _HOST_ID.fullmatch(unit):
        raise ValueError("unit and identifier: letters, digits, ., _, -")
    script = (
        "import time\n"
        f"for i in range(1, {int(count)} + 1):\n"
        f"    print('{identifier} %d' % i, flush={pause > 0})\n"
        f"    if {float(pause)}: time.sleep({float(pause)})\n"
    )
    argv = ["systemd-run", "--quiet", f"--unit={unit}", "-p", f"SyslogIdentifier={identifier}"]
    argv += ["--", "python3", "-c", script]
    _ok(c.run(argv), f"systemd-run {unit}")


def numbers(entries: list[dict[str, Any]], identifier: str) -> list[int]:
    """The sequence numbers in `entries`' messages "<identifier> <n>", in file order."""
    out = []
    for e in entries:
        msg = e.get("MESSAGE")
        if isinstance(msg, str) and msg.startswith(identifier + " "):
            out.append(int(msg.split()[1]))
    return out


def hub_main_pid(f: Fleet) -> int:
    return main_pid(f.hub, "systemd-journal-remote.service")


@contextmanager
def fleet(
    root: Path,
    workdir: Path,
    member_ids: tuple[str, ...] = ("member-a", "member-b"),
    member_binds_ro: list[tuple[str, str]] | None = None,
) -> Iterator[Fleet]:
    """A booted, configured hub and members; every container stopped at the end.

    `member_binds_ro`: directories of the test host bound read-only into every member (the
    checkout and its dependencies, for a member's own ai-sysadmin)."""
    journal_dir = workdir / "remote"
    journal_dir.mkdir(parents=True)
    zone = f"fl{os.getpid() % 10**9}"  # the bridge is vz-<zone>: at most 15 characters
    hub = Container(root, workdir / "hub.log", binds=[(str(journal_dir), REMOTE_DIR)], network_zone=zone, name=HUB_ID)
    members = {
        h: Container(root, workdir / f"{h}.log", binds_ro=list(member_binds_ro or []), network_zone=zone, name=h)
        for h in member_ids
    }
    addresses = {h: f"{ZONE_NET}.{i}" for i, h in enumerate(member_ids, start=2)}
    every = [hub, *members.values()]
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(every)) as pool:
            for fut in [pool.submit(c.start) for c in every]:
                fut.result()
        booted = time.monotonic()
        # nspawn makes the zone's bridge but leaves it down (systemd-networkd would bring it up)
        _ok(subprocess.run(["ip", "link", "set", f"vz-{zone}", "up"], capture_output=True, text=True), "bridge up")
        pki = Pki(workdir, "fleet-ca")
        for host_id, c in [(HUB_ID, hub), *members.items()]:
            set_host_name(c, host_id)
            set_address(c, HUB_ADDRESS if c is hub else addresses[host_id])
        configure_hub(hub, pki)
        f = Fleet(hub, members, addresses, journal_dir, pki, booted - t0, 0.0, bridge=f"vz-{zone}")
        for host_id, c in members.items():
            configure_member(c, pki, host_id, f.url)
        f.config_seconds = time.monotonic() - booted
        yield f
    finally:
        with ThreadPoolExecutor(len(every)) as pool:
            list(pool.map(lambda c: c.stop(), every))


@contextmanager
def hub_database(f: Fleet) -> Iterator[PgCluster]:
    """The hub's PostgreSQL as docs/fleet.md sets it up for members: listening on the fleet's
    network with TLS (a server certificate of the fleet's CA for HUB_DB_ADDRESS), and
    `hostssl ... scram-sha-256` the only way in from there.  Its unix socket stays the
    admin's (trust, as every rig cluster).  Destroyed at the end."""
    _ok(subprocess.run(["ip", "addr", "add", f"{HUB_DB_ADDRESS}/24", "dev", f.bridge], capture_output=True, text=True),
        "bridge address")  # fmt: skip
    cluster = PgCluster.create()
    try:
        pair = f.pki.issue("hub-db", ip=HUB_DB_ADDRESS)
        for src, name in ((pair.cert, "server.crt"), (pair.key, "server.key")):
            dest = cluster.datadir / name
            dest.write_text(src.read_text())
            dest.chmod(0o600)  # PostgreSQL refuses a key others can read
            cluster.chown(dest)
        with open(cluster.datadir / "postgresql.auto.conf", "a") as conf:
            conf.write(
                f"listen_addresses = '{HUB_DB_ADDRESS}'\nssl = on\n"
                "ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\npassword_encryption = 'scram-sha-256'\n"
            )
        with open(cluster.datadir / "pg_hba.conf", "a") as hba:
            hba.write(f"hostssl all all {ZONE_NET}.0/24 scram-sha-256\n")
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
