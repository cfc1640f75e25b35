"""Awkward journal entries, written by systemd-journal-remote and read back with journalctl."""

from __future__ import annotations

import json
from pathlib import Path

from ai_sysadmin.trigger.entry import BadEntry, field_text, from_journal, parse_json_line
from ai_sysadmin.trigger.reader import JournalSource, read_lines
from rig.journal import JournalWriter
from tests.trigger.helpers import T0_USEC, entry, replay


def _read(path: Path) -> list:
    return [parse_json_line(line) for line in read_lines(JournalSource("file", str(path)))]


def test_binary_invalid_utf8_huge_and_missing_fields(journal_writer: JournalWriter, tmp_path: Path) -> None:
    huge = "EXT4-fs error (device sda1): " + "x" * (100 * 1024)
    path = journal_writer.write(
        tmp_path / "odd.journal",
        [
            entry(b"No space left on device \xff\xfe while writing \x00 block", ident="postgres", priority=3),
            entry(b"caf\xc3\xa9 invalid \xc3\x28 utf-8: segfault at 0 ip 0000 sp 0000 error 4", ident="kernel"),
            entry(huge, ident="kernel", priority=2),
            {"MESSAGE": "line without identifier or unit"},  # (the rig always adds PRIORITY)
            {"PRIORITY": 3, "SYSLOG_IDENTIFIER": "nomsg"},  # no MESSAGE at all
        ],
        start_usec=T0_USEC,
    )
    entries = _read(path)
    assert len(entries) == 5
    binary, invalid, big, bare, nomsg = entries
    assert binary.message.startswith("No space left on device \ufffd\ufffd while writing")
    assert "caf\u00e9 invalid \ufffd( utf-8" in invalid.message
    assert big.message_len == len(huge) and len(big.message) == 8192  # cut for matching, length kept
    assert bare.identifier is None and bare.unit is None and bare.comm is None and bare.source_unit is None
    assert nomsg.message == ""
    assert all(e.cursor and e.boot_id and e.realtime_usec >= T0_USEC for e in entries)

    pipe, triggers = replay(path)
    sources = {t.source: t for t in triggers}
    assert sources["rule:disk-full"].category == "disk-full"
    assert sources["rule:segfault"].category == "crash"
    fs = sources["rule:fs-error"]
    assert fs.fields["message_length"] == len(huge) and len(fs.sample[0]) <= 1000
    assert pipe.stats.entries == 5 and pipe.stats.bad_lines == 0


def test_field_shapes_from_journalctl_json() -> None:
    assert field_text([104, 105, 255]) == "hi\ufffd"
    assert field_text(None) is None
    assert field_text(["first", "second"]) == "first"  # a field logged twice in one entry
    e = from_journal({"MESSAGE": None, "__REALTIME_TIMESTAMP": "5", "PRIORITY": "x", "UNIT": "a.service", "_PID": "1"})
    assert e.message == "" and e.priority is None and e.unit == "a.service"


def test_bad_json_lines_are_reported_not_fatal(tmp_path: Path) -> None:
    good = {
        "MESSAGE": "Kernel panic - not syncing: VFS",
        "PRIORITY": "0",
        "__REALTIME_TIMESTAMP": str(T0_USEC),
        "SYSLOG_IDENTIFIER": "kernel",
        "__CURSOR": "s=1",
    }
    export = tmp_path / "export.json"
    export.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                "[1, 2]",
                json.dumps({**good, "__REALTIME_TIMESTAMP": "soon"}),
                json.dumps({**good, "__CURSOR": "s=2"}),
            ]
        )
        + "\n"
    )
    bad: list = []
    pipe, triggers = replay(export, bad=bad)
    assert [n for n, _ in bad] == [2, 3, 4]
    assert "not JSON" in bad[0][1] and "expected a JSON object" in bad[1][1] and "__REALTIME_TIMESTAMP" in bad[2][1]
    assert pipe.stats.bad_lines == 3 and pipe.stats.entries == 2
    assert [t.count for t in triggers] == [2]


def test_parse_json_line_error_is_typed() -> None:
    try:
        parse_json_line(b"\xff\xfe")
    except BadEntry as exc:
        assert "not JSON" in str(exc)
    else:
        raise AssertionError("expected BadEntry")
