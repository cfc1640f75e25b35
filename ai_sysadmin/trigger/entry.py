"""One journal entry as L1 sees it, decoded from journald's JSON output.

journalctl -o json prints a field as a string when it is valid UTF-8 and as an array
of byte values otherwise (binary data, invalid UTF-8, or embedded control bytes); a
field over the size limit prints as null unless --all is given.  Every one of those
shapes decodes here into text so that nothing downstream has to care.  Messages are
cut at `max_message` characters for matching: a 100 MiB line must not stall the
pipeline, and the head of a message is what identifies it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

try:  # orjson ships with chromadb; it parses journal JSON several times faster.
    import orjson as _json

    _loads = _json.loads
except ImportError:  # pragma: no cover - the stdlib is the fallback, not the plan
    import json as _json  # type: ignore[no-redef]

    _loads = _json.loads

DEFAULT_MAX_MESSAGE = 8192

# systemd's structured result fields for unit/job failures (MESSAGE_ID catalogue entries).
RESULT_FIELDS = ("UNIT_RESULT", "JOB_RESULT", "JOB_TYPE", "EXIT_CODE", "EXIT_STATUS", "MESSAGE_ID",
                 "COREDUMP_SIGNAL_NAME", "COREDUMP_EXE", "COREDUMP_UNIT")


class BadEntry(ValueError):
    """A line that is not a journal entry; the reader counts it and goes on."""


@dataclass(slots=True)
class Entry:
    message: str
    realtime_usec: int  # __REALTIME_TIMESTAMP: microseconds since the epoch
    priority: int | None = None  # syslog priority 0 (emerg) .. 7 (debug)
    unit: str | None = None  # UNIT / USER_UNIT (systemd about a unit), else _SYSTEMD_UNIT (who logged)
    identifier: str | None = None  # SYSLOG_IDENTIFIER
    pid: str | None = None
    comm: str | None = None
    boot_id: str | None = None
    hostname: str | None = None
    cursor: str | None = None  # __CURSOR; None for text input
    message_len: int = 0  # length of the original message, before cutting
    result: dict[str, str] = field(default_factory=dict)  # RESULT_FIELDS present in the entry

    @property
    def source_unit(self) -> str | None:
        """What a trigger is grouped by: the unit, else the program that logged it."""
        return self.unit or self.identifier or self.comm


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
    return Entry(
        message=message[:max_message],
        realtime_usec=realtime,
        priority=_priority(get("PRIORITY")),
        # systemd's own messages about a unit come from init.scope (or user@.service) and name
        # their subject in UNIT= / USER_UNIT=: that is the unit the problem is about.
        unit=field_text(get("UNIT")) or field_text(get("USER_UNIT")) or field_text(get("_SYSTEMD_UNIT")),
        identifier=field_text(get("SYSLOG_IDENTIFIER")),
        pid=field_text(get("_PID")),
        comm=field_text(get("_COMM")),
        boot_id=field_text(get("_BOOT_ID")),
        hostname=field_text(get("_HOSTNAME")),
        cursor=field_text(get("__CURSOR")),
        message_len=len(message),
        result=result,
    )


def parse_json_line(line: bytes | str, max_message: int = DEFAULT_MAX_MESSAGE) -> Entry:
    """One line of `journalctl -o json` output -> Entry; raises BadEntry with the reason."""
    try:
        obj = _loads(line)
    except ValueError as exc:
        raise BadEntry(f"not JSON: {str(exc)[:120]}") from None
    return from_journal(obj, max_message)
