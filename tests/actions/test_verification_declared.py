"""Verification is data in the catalog: each action declares it, and each declaration has its check."""

from __future__ import annotations

import dataclasses

import pytest

from ai_sysadmin.actions.catalog import ActionSpec, Verification, load_catalog
from ai_sysadmin.actions.verification import BEFORE, CHECKS, Verifier

# The only actions whose success is their steps exiting 0: nothing on the host to observe afterwards.
STEPS_ONLY = {"notify"}


def test_every_action_that_changes_the_host_declares_a_verification_with_a_check() -> None:
    catalog = load_catalog()
    assert set(CHECKS) == set(Verification)  # every declaration can be checked
    assert set(BEFORE) <= set(Verification)
    for spec in catalog.specs.values():
        assert spec.verified_by in CHECKS, spec.id
        if spec.id in STEPS_ONLY:
            assert spec.verified_by is Verification.STEPS_ONLY
        else:
            assert spec.verified_by is not Verification.STEPS_ONLY, f"{spec.id} changes the host: declare its check"
    # No two actions share a check by accident: each host change is observed its own way.
    declared = [s.verified_by for s in catalog.specs.values() if s.id not in STEPS_ONLY]
    assert len(declared) == len(set(declared))


def test_the_declaration_is_required() -> None:
    assert next(f for f in dataclasses.fields(ActionSpec) if f.name == "verified_by").default is dataclasses.MISSING
    with pytest.raises(TypeError, match="verified_by"):
        ActionSpec(
            id="x",
            description="",
            risk="low",
            parameters={},
            verification="",  # type: ignore[call-arg]
            target_of=str,
            steps_of=lambda p, _: (),
            requires=(),
        )


async def test_steps_only_adds_nothing_to_the_exit_status() -> None:
    from ai_sysadmin.config import parse_config

    va = load_catalog().validate("notify", {"message": "hello"})
    v = Verifier(parse_config({}, env={}))
    assert await v.before(va) == {}
    assert await v.check(va, {}, True) == {"passed": True, "checks": [{"check": "every step exited 0", "passed": True}]}
    assert (await v.check(va, {}, False))["passed"] is False
