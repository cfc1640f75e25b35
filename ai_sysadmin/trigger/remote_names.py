"""Which fleet member a file in systemd-journal-remote's directory belongs to: from its name only.

With `SplitMode=host` journal-remote writes each sender's entries to
`<output>/remote-<name>.journal`, where `<name>` is `xescape(sender, "/ ")`: every byte
below 0x20 or from 0x7f, `\\`, `/` and space become `\\xHH` (lowercase hex).  Source:
systemd `src/journal-remote/journal-remote.c` (`open_output`, `filename_escape`) and
`src/basic/escape.c` (`xescape_full`).  The sender is

* the peer's address (`getpeername_pretty`, `10.213.0.2`): over plain HTTP, and over
  HTTPS when journal-remote is built without GnuTLS -- as Debian's and nixpkgs' are
  (measured: tests/fleet/test_transport.py): then no client certificate is checked at all;
* only with GnuTLS and a trusted CA: the distinguished name of the client certificate, as
  `gnutls_x509_crt_get_dn` prints it (`CN=web-1`, `O=Example,CN=web-1`;
  `src/journal-remote/microhttpd-util.c`, `check_permissions`), whose CN is taken.

So the hub maps senders to host ids with `fleet.members` (`HostNames`): a mapped sender is
its host id; with a map, any other sender is no host (an unknown machine that reaches
journal-remote's port must not become one); without a map the sender itself (or its
certificate's CN) is the host id, for a setup whose addresses are the member names.

Rotated files keep the live file's name as their prefix: archived
`remote-<name>@<seqnum id, 32 hex>-<head seqnum, 16 hex>-<head realtime, 16 hex>.journal`
(`journal_file_archive`) and set aside as corrupt `remote-<name>@<16 hex>-<16 hex>.journal~`
(`journal_file_dispose`), both in `src/libsystemd/sd-journal/journal-file.c`.

The host is never taken from an entry's `_HOSTNAME`: a member writes that field itself and
could name any other host.  A name that does not give a valid host id (the rules of
`fleet.host`) is refused with `UnmappedName`, and the caller skips that file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ai_sysadmin.config import HOST_ID_RE  # fleet.host's own rule

_LIVE = re.compile(r"^remote-(?P<name>.+)\.journal$", re.S)
_ARCHIVED = re.compile(r"^remote-(?P<name>.+)@[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{16}\.journal$", re.S)
_DISPOSED = re.compile(r"^remote-(?P<name>.+)@[0-9a-f]{16}-[0-9a-f]{16}\.journal~$", re.S)
_ESCAPE = re.compile(rb"\\x([0-9a-f]{2})")
_ESCAPED = b"/ "  # journal-remote's `filename_escape(s) xescape((s), "/ ")`


class UnmappedName(ValueError):
    """A file name that names no valid host id (the reason is in the message)."""


def is_journal_name(name: str) -> bool:
    return name.endswith((".journal", ".journal~"))


def is_live(name: str) -> bool:
    """The file journal-remote is writing (not an archived or set-aside one)."""
    return name.endswith(".journal") and _ARCHIVED.match(name) is None


def sender_of(name: str) -> str:
    """The sender journal-remote named the file `name` after (unescaped); UnmappedName if none."""
    m = _ARCHIVED.match(name) or _DISPOSED.match(name) or _LIVE.match(name)
    if m is None:
        raise UnmappedName(f"{name!r} is not named remote-<host>.journal (or a rotated remote-<host>@...)")
    raw = _ESCAPE.sub(lambda h: bytes([int(h.group(1), 16)]), m.group("name").encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


@dataclass(frozen=True)
class HostNames:
    """File name -> host id on a hub: through `members` (fleet.members) when it is not empty."""

    members: Mapping[str, str] = field(default_factory=dict)  # sender -> host id

    def host_of(self, name: str) -> str:
        if not self.members:
            return host_of(name)
        sender = sender_of(name)
        host = self.members.get(sender)
        if host is None:
            raise UnmappedName(f"{name!r}: not in fleet.members (sender {sender!r})")
        return host


def host_of(name: str) -> str:
    """The host id of the journal file `name` without a map: the certificate's CN, or the peer's address."""
    sender = sender_of(name)
    host = common_name(sender) if "=" in sender else sender
    if host is None:
        raise UnmappedName(f"{name!r}: the certificate's name {sender!r} has no single CN")
    if not HOST_ID_RE.fullmatch(host):
        raise UnmappedName(
            f"{name!r}: {host!r} is not a host id (letters, digits, . _ -; at most 63, starting with a letter or digit)"
        )
    return host


def common_name(dn: str) -> str | None:
    """The CN of a distinguished name as gnutls prints it (`O=Example,CN=web-1`); None unless exactly one."""
    # A `\,` inside a value is an escaped comma: such a value is no host id anyway, so a
    # plain split only has to find the CN attribute, never to decode values.
    found = [part[3:] for part in re.split(r"(?<!\\),", dn) if part[:3].upper() == "CN="]
    return found[0] if len(found) == 1 else None


def remote_file_name(sender: str) -> str:
    """The live file journal-remote writes for `sender` (the inverse of `sender_of`; tests and benches)."""
    out = bytearray()
    for b in sender.encode():
        if b < 0x20 or b >= 0x7F or b == 0x5C or b in _ESCAPED:
            out += b"\\x%02x" % b
        else:
            out.append(b)
    return f"remote-{out.decode()}.journal"
