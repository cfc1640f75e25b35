"""The policy table: every autonomy level x risk x protected x paused x rate-limited (x cool-down, breaker).

The expected decision is written out here independently of policy.py, from the issue's
rules, so a change to the rule order shows up as a failing row.
"""

from __future__ import annotations

import itertools

import pytest

from ai_sysadmin.actions.policy import decide, is_protected

LEVELS = ("observe", "suggest", "auto-safe", "auto-full")
RISKS = ("low", "medium", "high")
AUTO = {("auto-safe", "low"), ("auto-full", "low"), ("auto-full", "medium")}


def expected(level: str, risk: str, protected: bool, paused: bool, limited: bool, cooling: bool, breaker: bool) -> str:
    if protected:
        return "refuse"
    if level == "observe":
        return "record"
    if paused or risk == "high" or (level, risk) not in AUTO or limited or cooling or breaker:
        return "queue"
    return "execute"


CASES = list(
    itertools.product(LEVELS, RISKS, (False, True), (False, True), (False, True), (False, True), (False, True))
)


def test_table_covers_every_combination() -> None:
    assert len(CASES) == 4 * 3 * 2**5 == 384


@pytest.mark.parametrize("level,risk,protected,paused,limited,cooling,breaker", CASES)
def test_policy_table(level, risk, protected, paused, limited, cooling, breaker) -> None:
    d = decide(
        level,
        risk,
        protected=protected,
        paused=paused,
        rate_limited="rate limit: 3/3" if limited else None,
        cooling_down="cool-down: last at 10:00" if cooling else None,
        breaker_open="breaker open on x" if breaker else None,
        target="x.service",
    )
    assert d.decision == expected(level, risk, protected, paused, limited, cooling, breaker)
    assert d.reason  # every decision says why
    if (
        d.decision == "queue"
        and limited
        and not (paused or risk == "high" or (level, risk) not in AUTO or cooling or breaker)
    ):
        assert "rate limit" in d.reason


def test_high_risk_never_executes_at_any_level() -> None:
    assert all(decide(level, "high").decision != "execute" for level in LEVELS)


def test_unknown_level_or_risk_is_an_error_not_a_decision() -> None:
    with pytest.raises(ValueError):
        decide("yolo", "low")
    with pytest.raises(ValueError):
        decide("auto-full", "none")


@pytest.mark.parametrize(
    "unit,protected",
    [
        ("sshd.service", True),
        ("sshd", True),
        ("llama-meta.service", True),
        ("llama-anything.service", True),
        ("ai-sysadmin-executor.service", True),
        ("polkit.service", True),
        ("getty@tty1.service", True),
        ("nginx.service", False),
        ("getty@tty1.socket", False),
        ("my-llama.service", False),
    ],
)
def test_protected_units(unit: str, protected: bool) -> None:
    units = ("sshd.service", "getty@.service")
    assert is_protected(unit, units, ("llama-*", "ai-sysadmin*", "polkit*")) is protected
