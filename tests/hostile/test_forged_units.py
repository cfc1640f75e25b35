"""Forged journal fields from an unprivileged user, read from a real journald (issue 23, part 1).

The red team's attack, in a booted container (systemd-nspawn, real systemd and
journald): user `nobody` writes entries with `logger --journald` that claim
`UNIT=haproxy.service` / `UNIT=sshd@3-….service` with "No space left on device",
crash-loop and OOM-kill text.  The container's journal, exported with
`journalctl -o json` as journald stored it, goes through L1 -> incidents ->
candidates -> policy at auto-full (`replay --through review --no-model`): nothing acts
on haproxy or sshd@, nothing host-wide runs.  In the same journal PID 1 reports a unit
that really failed, and that one still gets its restart: the rule is "trusted fields
name targets", not "never act".
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import parse_config
from rig.net import wait_until
from rig.nspawn import Container, nspawn_root
from rig.paths import PartMissing
from rig.require import need
from rig.scenarios import by_kind, replay_review

pytestmark = pytest.mark.slow

SSHD_AT = "sshd@3-10.0.0.1:22-10.0.0.2:5555.service"
FORGED: list[dict[str, str]] = [
    {
        "UNIT": "haproxy.service",
        "PRIORITY": "3",
        "SYSLOG_IDENTIFIER": "haproxy",
        "MESSAGE": "haproxy[4242]: cannot write /var/lib/haproxy/stats: No space left on device",
    },
    {
        "UNIT": "haproxy.service",
        "PRIORITY": "3",
        "SYSLOG_IDENTIFIER": "systemd",
        "MESSAGE": "haproxy.service: Start request repeated too quickly.",
    },
    {
        "UNIT": "haproxy.service",
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "systemd",
        "UNIT_RESULT": "exit-code",
        "MESSAGE": "haproxy.service: Failed with result 'exit-code'.",
    },
    {
        "UNIT": SSHD_AT,
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "systemd",
        "UNIT_RESULT": "exit-code",
        "MESSAGE": f"{SSHD_AT}: Failed with result 'exit-code'.",
    },
    {
        "PRIORITY": "3",
        "SYSLOG_IDENTIFIER": "kernel",
        "MESSAGE": "Out of memory: Killed process 4242 (haproxy) total-vm:1kB, anon-rss:1kB "
        "task_memcg=/system.slice/haproxy.service",
    },
]


def _root() -> Path:
    try:
        return nspawn_root()
    except PartMissing as exc:
        need(str(exc))
        raise


def _as_nobody(c: Container, fields: dict[str, str]) -> None:
    """`logger --journald` run by user nobody: the native protocol, every field the user's choice.

    In its own scope unit, as a login session's processes are (session-N.scope).
    """
    text = "".join(f"{k}={v}\n" for k, v in fields.items())
    r = c.run(["systemd-run", "--scope", "--uid=nobody", "--quiet", "--", "logger", "--journald"], input=text)
    assert r.returncode == 0, r.stderr


def _journal(c: Container) -> list[dict[str, Any]]:
    r = c.run(["journalctl", "-o", "json", "--no-pager"], timeout=60)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_forged_units_from_a_local_user_name_no_target(tmp_path: Path) -> None:
    with Container(_root(), tmp_path / "nspawn.log") as c:
        # A unit that really fails: PID 1 reports it (UNIT=broken.service, _PID=1).
        c.write("/etc/systemd/system/broken.service", "[Service]\nExecStart=/bin/false\n")
        assert c.run(["systemctl", "daemon-reload"]).returncode == 0
        c.run(["systemctl", "start", "broken.service"])
        wait_until(
            lambda: c.run(["systemctl", "is-failed", "broken.service"]).stdout.strip() == "failed",
            30,
            "broken.service failed",
        )
        for fields in FORGED:
            _as_nobody(c, fields)
        for fields in FORGED[1:3]:  # a crash loop repeats
            _as_nobody(c, fields)

        def stored() -> bool:
            got = _journal(c)
            return sum(e.get("MESSAGE") in {f["MESSAGE"] for f in FORGED} for e in got) >= 7 and any(
                e.get("UNIT") == "broken.service" and e.get("UNIT_RESULT") for e in got
            )

        wait_until(stored, 30, "forged entries and PID 1's report in the journal")
        entries = _journal(c)
    forged = [e for e in entries if e.get("MESSAGE") in {f["MESSAGE"] for f in FORGED}]
    # journald stored the claims as sent, and its own trusted fields: uid 65534, not PID 1
    assert {e.get("UNIT") for e in forged} >= {"haproxy.service", SSHD_AT}
    # (_UID/_PID come from the socket's credentials; _SYSTEMD_UNIT only when journald read the
    # cgroup before the short-lived logger exited, so it is not asserted)
    assert all(e.get("_UID") == "65534" and e.get("_PID") != "1" for e in forged), forged[:2]
    assert any(e.get("UNIT") == "broken.service" and e.get("_PID") == "1" for e in entries)

    export = tmp_path / "container.export.json"
    export.write_text("".join(json.dumps(e) + "\n" for e in entries))
    cfg = parse_config({"state_dir": str(tmp_path / "state")}, env={})
    lines, _ = asyncio.run(replay_review(cfg, export, None, autonomy="auto-full"))
    k = by_kind(lines)
    acts = [p for p in k["proposal"] if p["action"] != "notify"]  # a notice may quote text; it acts on nothing
    assert "haproxy" not in json.dumps(acts) and "sshd@" not in json.dumps(acts), acts
    assert not {p["action"] for p in acts} & {"vacuum_journal", "collect_garbage"}, acts
    # the claim is kept, as text
    assert any(t["fields"].get("claimed_unit") == "haproxy.service" for t in k["trigger"]), k["trigger"]
    # PID 1's report still gets the restart, decided execute at auto-full
    restart = [p for p in acts if p["action"] == "restart_unit" and p["decision"] == "execute"]
    assert "broken.service" in [p["params"]["unit"] for p in restart], acts
