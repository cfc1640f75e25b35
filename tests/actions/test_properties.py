"""Hostile proposals (hypothesis): never an execution outside the catalog or above the level.

Random and adversarial proposals -- unknown ids, malformed and hostile parameters, unit
names with shell metacharacters, path traversal, oversized values -- go through the
catalog and the policy (the DryRunProposer, which is the service's validation and
policy without a database).  Properties:

* a rejected proposal is refused and every error names a field (`action`, `params`,
  `params.<name>`);
* an accepted one is a catalog id whose parameters match its schema exactly, and its
  argv contains the parameter values only as whole, separate arguments after `--` (or
  as fixed-format numbers), never spliced into a shell string;
* `execute` happens only for a catalog risk the autonomy level allows automatically.
"""

from __future__ import annotations

import asyncio
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ai_sysadmin.actions.catalog import UNIT_RE, Paths, ProposalRejected, load_catalog
from ai_sysadmin.actions.policy import AUTO_RISKS
from ai_sysadmin.actions.proposals import DryRunProposer
from ai_sysadmin.actions.types import Proposal
from ai_sysadmin.config import AUTONOMY_LEVELS, parse_config

CATALOG = load_catalog()
HOSTILE_UNITS = [
    "nginx.service; rm -rf /",
    "$(reboot).service",
    "`id`.service",
    "../../etc/shadow",
    "/etc/passwd",
    "nginx.service\n",
    "nginx.service\x00",
    "-H.service",
    "--help",
    "a|b.service",
    "a&&b.service",
    "x" * 10000 + ".service",
    "sshd.service",
    "llama-meta.service",
    "ok.service ",
    " ok.service",
    "ök.service",
    "a b.service",
    "..service",
    "nginx.service\r\nExecStart=x",
    "",
]
FIELD_RE = re.compile(r"^(action|source|params(\.[A-Za-z0-9_()]+)*)$")

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.sampled_from(HOSTILE_UNITS),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=12,
)
param_names = st.sampled_from(
    [
        "unit",
        "max_size_mb",
        "max_age_days",
        "older_than_days",
        "message",
        "path",
        "argv",
        "risk",
        "decision",
        "shell",
        "cmd",
    ]
) | st.text(max_size=20)
params = st.dictionaries(param_names, json_value | st.sampled_from(HOSTILE_UNITS), max_size=4)
action_ids = (
    st.sampled_from(CATALOG.ids())
    | st.sampled_from(["rm", "shell", "exec", "RESTART_UNIT", "restart_unit ", "../restart_unit", ""])
    | st.text(max_size=30)
)
levels = st.sampled_from(AUTONOMY_LEVELS)
CFGS = {
    lvl: parse_config({"autonomy_level": lvl, "state_dir": "/tmp/ai-sysadmin-prop"}, env={}) for lvl in AUTONOMY_LEVELS
}


def _check(level: str, action: object, p: object) -> None:
    out = asyncio.run(DryRunProposer(CFGS[level]).propose(Proposal(action=action, params=p, reason="x", source="meta")))  # type: ignore[arg-type]
    assert out.action_id is None  # the dry-run proposer records nothing
    if out.errors:
        assert out.decision == "refuse"
        for e in out.errors:
            assert FIELD_RE.match(e.field), e.field
            assert e.reason and len(e.reason) < 400
        return
    spec = CATALOG.get(out.action)
    assert spec is not None and spec.id == action
    assert out.risk == spec.risk  # risk is the catalog's
    if out.decision == "execute":
        assert spec.risk in AUTO_RISKS[level]
    va = CATALOG.validate(out.action, out.params)
    assert set(va.params) <= set(spec.parameters["properties"])
    for step in va.steps(Paths()):
        assert all(isinstance(a, str) for a in step.argv)
        if "unit" in va.params:
            assert UNIT_RE.match(va.params["unit"]) and "\n" not in va.params["unit"]
            # the unit is one whole argument, right after "--"
            assert step.argv[-2:] == ("--", va.params["unit"])
        if "message" in va.params:
            assert step.argv[-2:] == ("--", va.params["message"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(level=levels, action=action_ids, p=params)
def test_random_proposals(level: str, action: object, p: object) -> None:
    _check(level, action, p)


@settings(max_examples=300, deadline=None)
@given(
    level=levels,
    action=st.sampled_from(["restart_unit", "reset_failed_unit"]),
    unit=st.sampled_from(HOSTILE_UNITS) | st.text(max_size=300),
    extra=st.booleans(),
)
def test_hostile_unit_names(level: str, action: str, unit: str, extra: bool) -> None:
    p = {"unit": unit, **({"risk": "low"} if extra else {})}
    _check(level, action, p)
    if extra:  # an extra key (a model trying to set the risk) is always rejected, by name
        try:
            CATALOG.validate(action, p)
            raise AssertionError("accepted an unknown parameter")
        except ProposalRejected as exc:
            # ... by name, or the whole object when it is oversized
            assert any(e.field == "params.risk" for e in exc.errors) or [e.field for e in exc.errors] == ["params"]


@settings(max_examples=200, deadline=None)
@given(level=levels, action=action_ids, p=json_value)
def test_params_that_are_not_objects(level: str, action: object, p: object) -> None:
    _check(level, action, p)


def test_oversized_params_are_refused_by_name() -> None:
    try:
        CATALOG.validate("notify", {"message": "x" * 100000})
        raise AssertionError("accepted")
    except ProposalRejected as exc:
        assert [e.field for e in exc.errors] == ["params"]
    try:
        CATALOG.validate("notify", {"message": "x" * 501})
        raise AssertionError("accepted")
    except ProposalRejected as exc:
        assert [e.field for e in exc.errors] == ["params.message"]


def test_every_shipped_action_is_typed() -> None:
    for spec in CATALOG.specs.values():
        assert spec.risk in ("low", "medium", "high")
        assert spec.parameters["additionalProperties"] is False
        assert spec.verification and spec.timeout > 0
    assert {s.id: s.risk for s in CATALOG.specs.values()} == {
        "restart_unit": "low",
        "reset_failed_unit": "low",
        "vacuum_journal": "low",
        "collect_garbage": "medium",
        "rollback_generation": "high",
        "nix_store_repair": "high",
        "notify": "low",
    }
    gc = CATALOG.validate("collect_garbage", {"older_than_days": 14}).steps(Paths())
    assert gc[0].argv == ("nix-collect-garbage", "--delete-older-than", "14d")  # never plain -d


def test_every_action_declares_its_world_preconditions() -> None:
    """Declared data on each action, every one of them checked by the executor; none is implicit."""
    import dataclasses

    import pytest

    from ai_sysadmin.actions.catalog import ActionSpec, Precondition
    from ai_sysadmin.actions.preconditions import CHECKS

    assert set(CHECKS) == set(Precondition)
    assert next(f for f in dataclasses.fields(ActionSpec) if f.name == "requires").default is dataclasses.MISSING
    with pytest.raises(TypeError, match="requires"):
        ActionSpec(
            id="x",
            description="",
            risk="low",
            parameters={},
            verification="",
            target_of=str,  # type: ignore[call-arg]
            steps_of=lambda p, _: (),
        )
    unit = (Precondition.UNIT_LOADED, Precondition.UNIT_FAILED_OR_LOOPING)
    assert {s.id: s.requires for s in CATALOG.specs.values()} == {
        "restart_unit": unit,
        "reset_failed_unit": unit,
        "vacuum_journal": (Precondition.JOURNAL_FS_FULL,),
        "collect_garbage": (Precondition.NIX_STORE_FS_FULL,),
        "rollback_generation": (Precondition.GENERATION_BOUND,),
        "nix_store_repair": (),
        "notify": (),
    }
    assert CATALOG.get("restart_unit").describe()["preconditions"] == [p.value for p in unit]  # type: ignore[union-attr]
