"""Plain text log lines -> Entry, for `ai-sysadmin replay` on syslog files and exports.

Recognised shapes (anything else becomes a message without metadata, never an error):
* RFC 3164 syslog: `Jun 14 15:16:01 host ident[pid]: message`
* ISO 8601 / RFC 5424-ish: `2024-05-01T12:00:00.123+00:00 host ident[pid]: message`
* `journalctl -o short-iso` output, which is the ISO shape
* a leading Unix epoch, and a severity word (`ERROR`, `FATAL`, `warn` ...) among the first
  header tokens, as many application and HPC logs write them: the word sets PRIORITY and
  the text after it is the message.
Timestamps that cannot be read fall back to a deterministic clock (start + line number),
so replays of the same file form the same dedup windows.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ai_sysadmin.trigger.entry import DEFAULT_MAX_MESSAGE, Entry

_MONTHS = {
    m: i
    for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)
}
_RFC3164 = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) (?P<rest>.*)$")
_ISO = re.compile(r"^(?P<ts>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?) (?P<rest>.*)$")
_EPOCH = re.compile(r"^(?P<epoch>1\d{9})(?:\.\d+)? (?P<rest>.*)$")
# `host ident[pid]: msg` or `host ident: msg`
_HOST_TAG = re.compile(r"^(?P<host>\S+) (?P<ident>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?:(?: |$)(?P<msg>.*)$")
_LEVELS = {
    "EMERG": 0,
    "EMERGENCY": 0,
    "PANIC": 0,
    "ALERT": 1,
    "FATAL": 2,
    "CRIT": 2,
    "CRITICAL": 2,
    "FAILURE": 2,
    "ERR": 3,
    "ERROR": 3,
    "SEVERE": 3,
    "WARN": 4,
    "WARNING": 4,
    "NOTICE": 5,
    "INFO": 6,
    "DEBUG": 7,
    "TRACE": 7,
}
_HEADER_TOKENS = 10  # a severity word further in is part of the message, not a header field
_DEFAULT_YEAR = datetime.now(UTC).year  # RFC 3164 has no year: assume this one


class TextParser:
    """Stateful only in the fallback clock: line n without a timestamp gets base + n µs."""

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE, base_usec: int = 0, year: int = _DEFAULT_YEAR):
        self.max_message = max_message
        self.base_usec = base_usec
        self.year = year
        self.lineno = 0
        self._last_usec = base_usec

    def parse(self, line: str) -> Entry:
        self.lineno += 1
        line = line.rstrip("\r\n")
        usec: int | None = None
        rest = line
        m = _RFC3164.match(line)
        if m and m["mon"] in _MONTHS:
            h, mi, s = (int(x) for x in m["time"].split(":"))
            try:
                dt = datetime(self.year, _MONTHS[m["mon"]], int(m["day"]), h, mi, s, tzinfo=UTC)
                usec = int(dt.timestamp()) * 1_000_000
                rest = m["rest"]
            except ValueError:
                usec = None
        elif (m := _ISO.match(line)) is not None:
            ts = m["ts"].replace(",", ".").replace(" ", "T")
            try:
                dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
                if dt.tzinfo is None:
                    dt = dt.replace(tzinfo=UTC)
                usec = int(dt.timestamp() * 1_000_000)
                rest = m["rest"]
            except ValueError:
                usec = None
        elif (m := _EPOCH.match(line)) is not None:
            usec = int(m["epoch"]) * 1_000_000
            rest = m["rest"]
        host = ident = pid = None
        priority = None
        message = rest
        t = _HOST_TAG.match(rest) if usec is not None else None
        if t is not None:
            host, ident, pid, message = t["host"], t["ident"], t["pid"], t["msg"]
            # `sshd(pam_unix)` style tags carry the program before the parenthesis.
            ident = ident.split("(", 1)[0] or ident
        else:
            priority, ident, message = _severity_header(rest)
        if usec is None:
            usec = self.base_usec + self.lineno
        # Keep time monotonic within a file: syslog's second resolution would otherwise
        # put many lines on one timestamp, which is fine, but never go backwards by parsing.
        usec = max(usec, self._last_usec)
        self._last_usec = usec
        full_len = len(message)
        return Entry(
            message=message[: self.max_message],
            realtime_usec=usec,
            priority=priority,
            unit=None,
            identifier=ident,
            pid=pid,
            hostname=host,
            message_len=full_len,
        )


def _severity_header(text: str) -> tuple[int | None, str | None, str]:
    """Find a severity word among the first header tokens: (priority, identifier, message)."""
    tokens = text.split(" ", _HEADER_TOKENS)
    for i, tok in enumerate(tokens[:_HEADER_TOKENS]):
        level = _LEVELS.get(tok.strip("[]:<>").upper())
        if level is not None:
            ident = tokens[i - 1].strip("[]:") if i > 0 else None
            return level, ident or None, " ".join(tokens[i + 1 :])
    return None, None, text
