"""Correlation and lifecycle, deterministic: the same triggers always give the same incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_sysadmin.config import parse_config
from ai_sysadmin.incidents.correlate import Correlator, UnitView
from ai_sysadmin.trigger.model import Trigger, template_id

T0 = datetime(2025, 6, 15, tzinfo=UTC)
CFG = parse_config({}, env={}).review
N = 0


def trig(
    sev: str, cat: str, unit: str | None, text: str, at: float, source: str = "rule:x", sample: str | None = None
) -> Trigger:
    global N
    N += 1
    t = T0 + timedelta(seconds=at)
    return Trigger(
        id=f"t{N:04d}",
        severity=sev,
        category=cat,
        source=source,
        unit=unit,
        template=text,
        template_id=template_id(text),
        count=1,
        first_seen=t,
        last_seen=t,
        sample=[sample or text],
        summary=text,
    )


def oom_then_failure() -> list[Trigger]:
    return [
        trig(
            "critical",
            "oom",
            "kernel",
            "Out of memory: Killed process <*> (mysqld)",
            0,
            "rule:oom-kill",
            "Out of memory: Killed process 991 (mysqld) total-vm:1kB",
        ),
        trig("medium", "unit-failure", "mysql.service", "mysql.service: Main process exited, code=killed", 1),
        trig("high", "unit-failure", "mysql.service", "mysql.service: Failed with result 'signal'.", 1.5),
    ]


def test_oom_and_the_killed_units_failure_are_one_incident() -> None:
    c = Correlator(CFG)
    c.add(oom_then_failure())
    [inc] = c.incidents.values()
    assert inc.category == "oom" and inc.severity == "critical" and len(inc.trigger_ids) == 3
    assert inc.units == {"mysql.service"} and "mysql.service" in inc.title


def test_unrelated_units_are_two_incidents_even_in_one_window() -> None:
    c = Correlator(CFG)
    c.add(
        [
            trig("high", "unit-failure", "nginx.service", "nginx.service: Failed with result 'exit-code'.", 0),
            trig("high", "unit-failure", "redis.service", "redis.service: Failed with result 'timeout'.", 2),
        ]
    )
    assert sorted(i.units.pop() for i in c.incidents.values()) == ["nginx.service", "redis.service"]


def test_an_unrelated_unit_failing_after_an_oom_of_another_is_its_own_incident() -> None:
    c = Correlator(CFG)
    c.add([*oom_then_failure(), trig("high", "unit-failure", "nginx.service", "nginx.service: Failed", 30)])
    assert len(c.incidents) == 2


def test_disk_full_explains_units_failing_on_enospc() -> None:
    c = Correlator(CFG)
    c.add(
        [
            trig("critical", "disk-full", None, "filesystem <*> is <*>% full", 0, "threshold:disk"),
            trig(
                "high", "disk-full", "backup.service", "tar: Cannot write: No space left on device", 5, "rule:disk-full"
            ),
            trig("high", "unit-failure", "backup.service", "backup.service: Failed with result 'exit-code'.", 6),
        ]
    )
    [inc] = c.incidents.values()
    assert inc.category == "disk-full" and inc.units == {"backup.service"}


def test_repeated_failures_of_one_unit_are_one_incident() -> None:
    c = Correlator(CFG)
    c.add([trig("high", "unit-failure", "app.service", f"app.service: Failed attempt {i}", i * 60) for i in range(5)])
    assert len(c.incidents) == 1 and len(next(iter(c.incidents.values())).trigger_ids) == 5


def test_outside_the_window_is_a_new_incident() -> None:
    c = Correlator(CFG)
    c.add([trig("high", "hardware", "kernel", "I/O error, dev sda", 0)])
    c.add([trig("high", "hardware", "kernel", "I/O error, dev sdb", CFG.incident_window + 3600 * 3)])
    assert len(c.incidents) == 2


def test_model_only_evidence_never_above_medium() -> None:
    c = Correlator(CFG)
    c.add([trig("critical", "other", "weird.service", "weird thing <*>", 0, "model")])
    [inc] = c.incidents.values()
    assert inc.severity == "medium" and inc.confidence == "low"
    c.add([trig("high", "unit-failure", "weird.service", "weird.service: Failed", 10)])
    assert inc.severity == "high" and inc.confidence == "normal" and inc.category == "unit-failure"


def test_self_resolve_only_when_quiet_and_units_healthy() -> None:
    c = Correlator(CFG)
    c.add(oom_then_failure())
    [inc] = c.incidents.values()
    quiet = T0 + timedelta(seconds=CFG.quiet_seconds + 10)
    assert c.tick(T0 + timedelta(seconds=60), UnitView(True)) == []  # triggers have not stopped
    assert c.tick(quiet, UnitView(True, frozenset({"mysql.service"}))) == []  # still failed
    assert c.tick(quiet, UnitView(False, reason="no systemd")) == []  # unknown is not healthy
    [ch] = c.tick(quiet, UnitView(True, frozenset({"other.service"})))
    assert ch.kind == "resolved" and inc.status == "resolved"
    assert "mysql.service no longer failed" in (inc.resolved_reason or "")


def test_reopen_on_recurrence_then_close_after_the_window() -> None:
    c = Correlator(CFG)
    c.add([trig("high", "unit-failure", "app.service", "app.service: Failed", 0)])
    [inc] = c.incidents.values()
    c.tick(T0 + timedelta(seconds=CFG.quiet_seconds + 1), UnitView(True))
    assert inc.status == "resolved"
    [ch] = c.add([trig("high", "unit-failure", "app.service", "app.service: Failed again", CFG.quiet_seconds + 100)])
    assert ch.kind == "reopened" and inc.status == "open" and inc.reopened == 1 and len(c.incidents) == 1
    resolved_at = T0 + timedelta(seconds=2 * CFG.quiet_seconds + 200)
    c.tick(resolved_at, UnitView(True))
    [ch] = c.tick(resolved_at + timedelta(seconds=CFG.reopen_window + 1), UnitView(True))
    assert ch.kind == "closed" and not c.incidents
    c.add([trig("high", "unit-failure", "app.service", "app.service: Failed once more", 10 * CFG.reopen_window)])
    assert [i.reopened for i in c.incidents.values()] == [0]  # closed stays closed: a new incident


def test_same_input_same_incidents() -> None:
    def run() -> list[tuple]:
        c = Correlator(CFG)
        c.add(list(reversed(oom_then_failure())))
        return [(i.category, i.severity, i.title, tuple(i.trigger_ids)) for i in c.incidents.values()]

    global N
    N = 0
    a = run()
    N = 0
    assert run() == a
