"""One journal entry as L1 sees it, decoded from journald's JSON output.

journalctl -o json prints a field as a string when it is valid UTF-8 and as an array
of byte values otherwise (binary data, invalid UTF-8, or embedded control bytes); a
field over the size limit prints as null unless --all is given.  Every one of those
shapes decodes here into text so that nothing downstream has to care.  Messages are
cut at `max_message` characters for matching: a 100 MiB line must not stall the
pipeline, and the head of a message is what identifies it.

Trust (docs/security.md, "Evidence and proposals"): journald lets any local user set any
field whose name does not start with `_` (`logger --journald`, `systemd-cat`, the native
protocol); the `_` fields are journald's own, taken from the kernel.  So an entry names
a *target* (`unit`) only from what journald vouches for: `_SYSTEMD_UNIT` (the cgroup of
the process that logged), or `UNIT=` / `COREDUMP_UNIT=` when the trusted fields prove
the sender is PID 1 (`_PID=1`) or systemd-coredump (its own `systemd-coredump@` unit).
Units that only report on others (systemd-coredump@N, systemd-oomd) are never the subject:
a core dump without COREDUMP_UNIT names no unit.  Everything else that names a unit is a
claim: kept as text (`claimed_unit`), shown to people and models, never acted on.  User
units (`USER_UNIT=`, `_SYSTEMD_USER_UNIT`) are named by their user and live in a user
manager the catalog does not act on: text too.
`sender` says which trusted sender, if any, the entry provably comes from; message
text that names a victim (an OOM kill, a segfault, a core dump) counts only then.
Text input (syslog files) proves nothing: it never names a unit or a sender.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

try:  # orjson ships with chromadb; it parses journal JSON several times faster.
    import orjson as _json

    _loads = _json.loads
except ImportError:  # pragma: no cover - the stdlib is the fallback, not the plan
    import json as _json  # type: ignore[no-redef]

    _loads = _json.loads

DEFAULT_MAX_MESSAGE = 8192

# Senders whose trusted fields prove who they are; only they may name a unit in text or fields.
KERNEL, PID1, COREDUMP = "kernel", "pid1", "coredump"
TRUSTED_SENDERS = frozenset({KERNEL, PID1, COREDUMP})
_COREDUMP_UNIT_PREFIX = "systemd-coredump@"
# Units that report on *other* units' processes (a core dump, an oomd kill): what they log is
# about the unit they name (COREDUMP_UNIT=, PID 1's own follow-up line), never about themselves.
_REPORTER_UNITS = frozenset({"systemd-oomd.service"})

# systemd's structured result fields for unit/job failures (MESSAGE_ID catalogue entries).
RESULT_FIELDS = (
    "UNIT_RESULT",
    "JOB_RESULT",
    "JOB_TYPE",
    "EXIT_CODE",
    "EXIT_STATUS",
    "MESSAGE_ID",
    "COREDUMP_SIGNAL_NAME",
    "COREDUMP_EXE",
    "COREDUMP_UNIT",
    "COREDUMP_PID",
)


# Shaped like a systemd unit name (the correlator's test, kept here: L1 imports nothing above it).
_UNIT_SHAPED = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|mount|automount|path|slice|scope|swap)$")


class BadEntry(ValueError):
    """A line that is not a journal entry; the reader counts it and goes on."""


@dataclass(slots=True)
class Entry:
    message: str
    realtime_usec: int  # __REALTIME_TIMESTAMP: microseconds since the epoch
    priority: int | None = None  # syslog priority 0 (emerg) .. 7 (debug)
    unit: str | None = None  # a system unit journald vouches for (see the module docstring); never a claim
    identifier: str | None = None  # SYSLOG_IDENTIFIER
    pid: str | None = None
    comm: str | None = None
    boot_id: str | None = None
    hostname: str | None = None
    cursor: str | None = None  # __CURSOR; None for text input
    message_len: int = 0  # length of the original message, before cutting
    result: dict[str, str] = field(default_factory=dict)  # RESULT_FIELDS present in the entry
    claimed_unit: str | None = None  # UNIT= / COREDUMP_UNIT= the trusted fields do not back: text only
    user_unit: str | None = None  # USER_UNIT= / _SYSTEMD_USER_UNIT: a user's own unit, text only
    sender: str | None = None  # KERNEL | PID1 | COREDUMP when the trusted fields prove it, else None

    @property
    def source_unit(self) -> str | None:
        """What a trigger is grouped by: the unit, else the program that logged it.

        The program's name (SYSLOG_IDENTIFIER is set by the sender, _COMM by the process
        itself) is a label, never a target: one shaped like a unit name is marked so that
        nothing downstream reads it as one (`logger -t haproxy.service`).
        """
        if self.unit:
            return self.unit
        name = self.identifier or self.comm
        if name and _UNIT_SHAPED.match(name):
            return f"{name} (identifier)"
        return name


def field_text(value: Any) -> str | None:
    """A journald JSON field value as text: string, byte array, null or (multi-valued) list."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if not value:
            return ""
        if isinstance(value[0], int):  # non-UTF-8 / binary: an array of byte values
            try:
                return bytes(value).decode("utf-8", errors="replace")
            except (ValueError, TypeError):
                return "".join(chr(b) if isinstance(b, int) and 0 <= b < 256 else "?" for b in value)
        # A field logged several times in one entry is a list of values: use the first.
        return field_text(value[0])
    return str(value)


def _priority(value: Any) -> int | None:
    text = field_text(value)
    if text is None or not text.strip().isdigit():
        return None
    p = int(text)
    return p if 0 <= p <= 7 else None


def from_journal(obj: Any, max_message: int = DEFAULT_MAX_MESSAGE) -> Entry:
    """Build an Entry from one decoded `journalctl -o json` object."""
    if not isinstance(obj, dict):
        raise BadEntry(f"expected a JSON object, got {type(obj).__name__}")
    message = field_text(obj.get("MESSAGE")) or ""
    try:
        realtime = int(field_text(obj.get("__REALTIME_TIMESTAMP")) or "0")
    except ValueError:
        raise BadEntry("__REALTIME_TIMESTAMP is not an integer") from None
    result = {}
    for name in RESULT_FIELDS:
        if name in obj:
            value = field_text(obj[name])
            if value is not None:
                result[name] = value[:256]
    get = obj.get
    sender = trusted_sender(obj)
    unit, claimed, user_unit = units_of(obj, sender)
    return Entry(
        message=message[:max_message],
        realtime_usec=realtime,
        priority=_priority(get("PRIORITY")),
        unit=unit,
        identifier=field_text(get("SYSLOG_IDENTIFIER")),
        pid=field_text(get("_PID")),
        comm=field_text(get("_COMM")),
        boot_id=field_text(get("_BOOT_ID")),
        hostname=field_text(get("_HOSTNAME")),
        cursor=field_text(get("__CURSOR")),
        message_len=len(message),
        result=result,
        claimed_unit=claimed,
        user_unit=user_unit,
        sender=sender,
    )


def trusted_sender(obj: dict[str, Any]) -> str | None:
    """KERNEL, PID1 or COREDUMP when journald's own `_` fields prove the sender, else None."""
    if field_text(obj.get("_TRANSPORT")) == "kernel":
        return KERNEL
    if field_text(obj.get("_PID")) == "1":  # from the socket's credentials, not from the sender
        return PID1
    if (field_text(obj.get("_SYSTEMD_UNIT")) or "").startswith(_COREDUMP_UNIT_PREFIX):
        return COREDUMP  # systemd-coredump runs as systemd-coredump@.service: a cgroup nobody else joins
    return None


def units_of(obj: dict[str, Any], sender: str | None) -> tuple[str | None, str | None, str | None]:
    """(unit, claimed_unit, user_unit) of one entry, by the trust rules of the module docstring.

    PID 1 names its subject in UNIT=, systemd-coredump the crashed process's unit in
    COREDUMP_UNIT= (from that process's cgroup): those are the units a problem is about.
    Otherwise the unit is the logging process's own cgroup unit, and a UNIT= claim stays text.
    """
    get = obj.get
    claim = field_text(get("UNIT")) or field_text(get("COREDUMP_UNIT"))
    user_unit = (
        field_text(get("USER_UNIT")) or field_text(get("COREDUMP_USER_UNIT")) or field_text(get("_SYSTEMD_USER_UNIT"))
    )
    if user_unit:
        # About a user's own unit (named by that user), or logged from inside a user manager:
        # the system unit around it (user@UID.service) is not what the problem is about.
        return None, claim, user_unit
    if sender == PID1 and field_text(get("UNIT")):
        return field_text(get("UNIT")), None, None
    if sender == COREDUMP:
        # The crashed process's unit, or none: systemd-coredump@N.service is only the messenger.
        return field_text(get("COREDUMP_UNIT")) or None, None, None
    own = field_text(get("_SYSTEMD_UNIT"))
    if own in _REPORTER_UNITS:
        return None, claim, None
    return own, claim, None


def parse_json_line(line: bytes | str, max_message: int = DEFAULT_MAX_MESSAGE) -> Entry:
    """One line of `journalctl -o json` output -> Entry; raises BadEntry with the reason."""
    try:
        obj = _loads(line)
    except ValueError as exc:
        raise BadEntry(f"not JSON: {str(exc)[:120]}") from None
    return from_journal(obj, max_message)
