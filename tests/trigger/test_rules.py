"""Every built-in rule fires on realistic lines read back from a real journal file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.trigger.entry import Entry
from ai_sysadmin.trigger.rules import RuleError, RuleSet, builtin_rule_data, required_literals
from rig.journal import JournalWriter
from tests.trigger.helpers import T0_USEC, entry, replay

# rule id -> (entry fields, expected category).  Lines as the real programs write them.
REALISTIC = {
    "oom-kill": (
        entry(
            "Out of memory: Killed process 2211 (postgres) total-vm:8123456kB, anon-rss:7000000kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:71 pgtables:14000kB oom_score_adj:0",
            ident="kernel",
            priority=3,
        ),
        "oom",
    ),
    "oomd-kill": (
        entry(
            "Killed /system.slice/nix-daemon.service due to memory pressure for /system.slice being "
            "72.13% > 50.00% for > 20s with reclaim activity",
            ident="systemd-oomd",
            unit="systemd-oomd.service",
            priority=5,
        ),
        "oom",
    ),
    "segfault": (
        entry(
            "nginx[3321]: segfault at 0 ip 000055d0c4a1b2c3 sp 00007ffd1e2f3a40 error 4 in "
            "nginx[55d0c4a00000+120000] likely on CPU 1 (core 1, socket 0)",
            ident="kernel",
            priority=6,
        ),
        "crash",
    ),
    "coredump": (
        entry(
            "Process 3321 (nginx) of user 60 dumped core.\n\nStack trace of thread 3321:\n#0  0x00007f "
            "n/a (libc.so.6 + 0x8e9fc)",
            ident="systemd-coredump",
            priority=2,
        ),
        "crash",
    ),
    "coredump-field": (
        entry(
            "Process 3322 (python3) crashed",
            ident="systemd-coredump",
            priority=2,
            COREDUMP_SIGNAL_NAME="SIGSEGV",
            COREDUMP_EXE="/nix/store/abc-python3/bin/python3",
        ),
        "crash",
    ),
    "kernel-panic": (
        entry("Kernel panic - not syncing: Fatal exception in interrupt", ident="kernel", priority=0),
        "kernel",
    ),
    "kernel-oops": (
        entry("BUG: kernel NULL pointer dereference, address: 0000000000000008", ident="kernel", priority=1),
        "kernel",
    ),
    "hung-task": (
        entry("INFO: task jbd2/sda1-8:312 blocked for more than 122 seconds.", ident="kernel", priority=3),
        "kernel",
    ),
    "soft-lockup": (
        entry("watchdog: BUG: soft lockup - CPU#2 stuck for 23s! [kworker/2:1:1234]", ident="kernel", priority=0),
        "kernel",
    ),
    "machine-check": (
        entry("mce: [Hardware Error]: Machine check events logged", ident="kernel", priority=2),
        "hardware",
    ),
    "thermal": (
        entry(
            "CPU3: Package temperature above threshold, cpu clock throttled (total events = 1)",
            ident="kernel",
            priority=4,
        ),
        "hardware",
    ),
    "disk-io-error": (
        entry(
            "blk_update_request: I/O error, dev sda, sector 123456789 op 0x0:(READ) flags 0x80700 "
            "phys_seg 1 prio class 0",
            ident="kernel",
            priority=3,
        ),
        "hardware",
    ),
    "smart": (
        entry(
            "Device: /dev/sda [SAT], 8 Currently unreadable (pending) sectors",
            ident="smartd",
            unit="smartd.service",
            priority=2,
        ),
        "hardware",
    ),
    "fs-error": (
        entry(
            "EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0",
            ident="kernel",
            priority=2,
        ),
        "filesystem",
    ),
    "disk-full": (
        entry(
            'could not write to file "pg_wal/xlogtemp.1234": No space left on device',
            ident="postgres",
            unit="postgresql.service",
            priority=3,
        ),
        "disk-full",
    ),
    "inode-full": (
        entry("EXT4-fs warning: ext4_mkdir: out of inodes on /dev/sdb1", ident="kernel", priority=4),
        "disk-full",
    ),
    "unit-failed": (
        entry(
            "nginx.service: Failed with result 'exit-code'.",
            ident="systemd",
            unit="init.scope",
            priority=4,
            UNIT="nginx.service",
        ),
        "unit-failure",
    ),
    "unit-result": (
        entry(
            "Dienst nginx.service ist fehlgeschlagen.",
            ident="systemd",
            priority=4,
            UNIT="nginx.service",
            UNIT_RESULT="exit-code",
            MESSAGE_ID="d9b373ed55a64feb8242e02dbe79a49c",
        ),
        "unit-failure",
    ),
    "unit-crashloop": (
        entry("nginx.service: Start request repeated too quickly.", ident="systemd", priority=4, UNIT="nginx.service"),
        "unit-failure",
    ),
    "unit-dependency": (
        entry("Dependency failed for Local File Systems.", ident="systemd", priority=3, UNIT="local-fs.target"),
        "unit-failure",
    ),
    "unit-start-failed": (
        entry(
            "nginx.service: Main process exited, code=exited, status=1/FAILURE",
            ident="systemd",
            priority=6,
            UNIT="nginx.service",
        ),
        "unit-failure",
    ),
    "unit-timeout": (
        entry(
            "postgresql.service: start operation timed out. Terminating.",
            ident="systemd",
            priority=3,
            UNIT="postgresql.service",
        ),
        "unit-failure",
    ),
    "auth-failure": (
        entry(
            "Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2",
            ident="sshd",
            unit="sshd.service",
            priority=6,
        ),
        "auth",
    ),
    "sudo-denied": (
        entry(
            "mallory : user NOT in sudoers ; TTY=pts/0 ; PWD=/home/mallory ; USER=root ; "
            "COMMAND=/run/current-system/sw/bin/bash",
            ident="sudo",
            priority=2,
        ),
        "security",
    ),
    "intrusion-hint": (
        entry(
            'audit: type=1400 audit(1718000000.123:45): apparmor="DENIED" operation="open" '
            'profile="/usr/sbin/cupsd" name="/etc/shadow"',
            ident="kernel",
            priority=5,
        ),
        "security",
    ),
    "time-jump": (
        entry("System clock wrong by 3600.218 seconds", ident="chronyd", unit="chronyd.service", priority=4),
        "time",
    ),
    "time-sync-lost": (
        entry("Can't synchronise: no selectable sources", ident="chronyd", unit="chronyd.service", priority=4),
        "time",
    ),
    "nixos-activation": (
        entry("warning: the following units failed: nginx.service", ident="nixos-rebuild", priority=4),
        "nix",
    ),
    "nix-store": (
        entry(
            "error: path '/nix/store/0c0xfghmpsyz2ql8dwf6k4pw9ncvlk9q-glibc-2.39-52' is not valid",
            ident="nix-daemon",
            unit="nix-daemon.service",
            priority=3,
        ),
        "nix",
    ),
    "certificate": (
        entry(
            "[example.org] acme: error: 403 :: urn:ietf:params:acme:error:unauthorized :: Could not renew certificate",
            ident="lego",
            unit="acme-example.org.service",
            priority=3,
        ),
        "certificate",
    ),
    "link-down": (entry("e1000e 0000:00:1f.6 eno1: NIC Link is Down", ident="kernel", priority=6), "network"),
    "resource-exhausted": (
        entry("accept4() failed (24: Too many open files)", ident="nginx", unit="nginx.service", priority=3),
        "resource",
    ),
}


def test_every_builtin_rule_has_a_realistic_case() -> None:
    assert {r["id"] for r in builtin_rule_data()} == set(REALISTIC)


@pytest.fixture(scope="module")
def rules_journal(journal_writer: JournalWriter, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "rules.journal"
    entries = []
    for rule_id, (fields, _) in REALISTIC.items():
        # auth-failure is a burst rule (min_count 5); every other rule fires on one line.
        entries += [fields] * (5 if rule_id == "auth-failure" else 1)
        entries.append(entry("Started Session 42 of User alice.", ident="systemd", unit="session-42.scope"))
    return journal_writer.write(path, entries, start_usec=T0_USEC)


def test_each_rule_fires_on_its_line_from_a_real_journal(rules_journal: Path) -> None:
    _, triggers = replay(rules_journal)
    got = {t.source: t for t in triggers}
    for rule_id, (_, category) in REALISTIC.items():
        t = got.get(f"rule:{rule_id}")
        assert t is not None, f"rule {rule_id} did not fire; got {sorted(got)}"
        assert t.category == category, rule_id
    # Routine lines raise nothing.
    assert not [t for t in triggers if "Started Session" in t.template]
    assert got["rule:auth-failure"].count == 5
    # The unit is what the problem is about: UNIT= for systemd's own messages.
    assert got["rule:unit-crashloop"].unit == "nginx.service"
    assert got["rule:unit-failed"].unit == "nginx.service"  # logged by init.scope, about nginx
    assert got["rule:disk-full"].unit == "postgresql.service"


def test_burst_rule_needs_its_min_count(journal_writer: JournalWriter, tmp_path: Path) -> None:
    fields, _ = REALISTIC["auth-failure"]
    path = journal_writer.write(tmp_path / "a.journal", [fields] * 4, start_usec=T0_USEC)
    _, triggers = replay(path)
    assert not [t for t in triggers if t.source == "rule:auth-failure"]


def test_priority_crit_is_a_trigger_but_dump_detail_lines_are_not(
    journal_writer: JournalWriter, tmp_path: Path
) -> None:
    path = journal_writer.write(
        tmp_path / "p.journal",
        [
            entry("frobnicator lost its quorum", ident="frob", priority=2),
            entry("RAX: 0000000000000000 RBX: ffff8881003c4a00 RCX: 0000000000000001", ident="kernel", priority=2),
            entry("instruction address: 0x00004ed8", ident="kernel", priority=2),
            entry("could not frobnicate", ident="frob", priority=3),  # err alone: not a trigger without the model
        ],
        start_usec=T0_USEC,
    )
    _, triggers = replay(path)
    assert [(t.source, t.template) for t in triggers] == [("rule:priority", "frobnicator lost its quorum")]
    assert triggers[0].severity == "high"


def test_config_rules_extend_replace_and_disable() -> None:
    rs = RuleSet.build(
        [
            {
                "id": "my-app-wedged",
                "severity": "critical",
                "category": "other",
                "summary": "my app is wedged",
                "pattern": "watchdog: request queue stuck",
                "identifiers": ["myapp"],
            },
            {"id": "link-down", "severity": "low", "category": "network", "pattern": "NIC Link is Down"},
        ],
        disabled=["segfault"],
    )
    e = Entry(message="watchdog: request queue stuck for 30s", realtime_usec=T0_USEC, identifier="myapp")
    assert rs.match(e).id == "my-app-wedged"
    assert rs.match(Entry(message="watchdog: request queue stuck", realtime_usec=0, identifier="other")) is None
    assert rs.by_id["link-down"].severity == "low"
    assert "segfault" not in rs.by_id


@pytest.mark.parametrize(
    "bad, where",
    [
        ({"id": "x", "severity": "urgent", "category": "other", "pattern": "a"}, "trigger.rules[0].severity"),
        ({"id": "x", "severity": "high", "category": "stuff", "pattern": "a"}, "trigger.rules[0].category"),
        ({"id": "x", "severity": "high", "category": "other", "pattern": "(unclosed"}, "trigger.rules[0].pattern"),
        ({"id": "x", "severity": "high", "category": "other"}, "trigger.rules[0]"),
        ({"id": "X Y", "severity": "high", "category": "other", "pattern": "a"}, "trigger.rules[0].id"),
        ({"id": "x", "severity": "high", "category": "other", "pattern": "a", "colour": 1}, "trigger.rules[0].colour"),
    ],
)
def test_bad_rules_name_the_field(bad: dict, where: str) -> None:
    with pytest.raises(RuleError) as exc:
        RuleSet.build([bad])
    assert str(exc.value).startswith(where + ":")


def test_unknown_disabled_rule_is_an_error() -> None:
    with pytest.raises(RuleError, match=r"trigger\.disabled_rules: unknown rule id"):
        RuleSet.build(disabled=["no-such-rule"])


def test_required_literals_are_sound_for_every_builtin_rule() -> None:
    # The literal prefilter must never hide a line the regex would match.
    rs = RuleSet.build()
    for rule_id, (fields, _) in REALISTIC.items():
        rule = rs.by_id[rule_id]
        msg = fields["MESSAGE"]
        if rule.pattern is not None and rule.pattern.search(msg):
            assert rule.literals is None or any(lit in msg.lower() for lit in rule.literals), rule_id
    assert required_literals("a|b") is None  # too short to be a useful filter: always evaluated
    assert required_literals("[Ff]ailed with result") == ("ailed with result",)


def test_rules_run_on_a_linear_time_engine() -> None:
    """Every rule pattern, built-in or the admin's, is RE2: matching time is linear in the line's length.

    Python's backtracking engine took 0.22 s per crafted 8 KiB line on `acme.*(failed|error)`
    (bench/rules_worst_case.py prints both engines' figures); RE2 has no backtracking to exploit.
    """
    import re2

    rs = RuleSet.build(
        [
            {
                "id": "own",
                "severity": "critical",
                "category": "other",
                "pattern": "widget.*(jammed|stuck)",
                "fields": {"EXIT_STATUS": "^7[0-9]$"},
            }
        ]
    )
    for rule in rs.rules:
        assert rule.pattern is None or isinstance(rule.pattern, re2._Regexp), rule.id
        assert all(isinstance(rx, re2._Regexp) for _, rx in rule.fields), rule.id
    for crafted in ("acme" * 2048, "widget" * 1365):
        assert rs.match(Entry(message=crafted, realtime_usec=0, priority=6)) is None
    jammed = Entry(message="Widget feeder JAMMED", realtime_usec=0, priority=6, result={"EXIT_STATUS": "75"})
    assert rs.match(jammed).id == "own"


def test_a_rule_the_linear_engine_cannot_run_is_refused_with_its_field() -> None:
    with pytest.raises(RuleError) as exc:
        RuleSet.build([{"id": "x", "severity": "high", "category": "other", "pattern": "acme(?!ok)"}])
    assert str(exc.value).startswith("trigger.rules[0].pattern:") and "RE2" in str(exc.value)
