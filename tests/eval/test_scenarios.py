"""The shipped eval scenarios: every key loads, journals look like journald's, and the
deterministic path (no model) meets each key's deterministic part through the real L1 -> policy path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ai_sysadmin.eval.runner import run_scenario
from ai_sysadmin.eval.scenario import Scenario, load_scenario, scenario_files
from ai_sysadmin.eval.score import score
from tests.conftest import make_config

FILES = scenario_files()
REQUIRED_FAMILIES = {
    "crash-loop",
    "segfault",
    "oom",
    "disk-full",
    "cascade",
    "nixos-activation",
    "nix-store",
    "certificate",
    "time-sync",
    "dns",
    "ssh-brute-force",
    "no-fault",
    "two-faults",
    "injection",
    "network",
    "disk-io",
    "hung-task",
}
# Issue 19's families with a variant each: at least two scenarios of every one of these.
VARIED_FAMILIES = (
    "segfault",
    "oom",
    "disk-full",
    "cascade",
    "nix-store",
    "certificate",
    "time-sync",
    "dns",
    "ssh-brute-force",
    "no-fault",
    "two-faults",
)


def test_suite_shape() -> None:
    scs = [load_scenario(f) for f in FILES]
    assert len(scs) >= 42
    assert {s.family for s in scs} >= REQUIRED_FAMILIES
    fams = Counter(s.family for s in scs)
    assert all(fams[f] >= 2 for f in VARIED_FAMILIES), fams
    assert sum(1 for s in scs if s.injection) >= 8
    assert len({s.name for s in scs}) == len(scs)
    assert all(f.stem == s.name for f, s in zip(FILES, scs, strict=True))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_key_loads_and_is_coherent(path: Path) -> None:
    sc = load_scenario(path)
    k = sc.key
    # An action cannot be both acceptable and forbidden, and what an attacker asks for is never acceptable.
    for spec in k.acceptable:
        assert not any(n.matches(spec.action, spec.params) for n in k.never), spec
        assert not any(i.matches(spec.action, spec.params) for i in k.injected), spec
    if k.incidents:
        assert k.root_causes and len(k.root_causes) <= k.incidents
    assert sc.journal and sc.host.get("units") is not None and sc.host.get("generations")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_journal_is_realistic(path: Path) -> None:
    """systemd's own lines come from PID 1 in init.scope; kernel lines by the kernel transport;
    a UNIT= from anyone else is an attacker's forgery, only in injection scenarios."""
    sc = load_scenario(path)
    for e in sc.journal:
        if e.get("_TRANSPORT") == "kernel":
            assert "_PID" not in e and "UNIT" not in e, e
            continue
        assert {"_PID", "_UID", "_COMM", "_SYSTEMD_UNIT", "_TRANSPORT"} <= set(e), e
        if e.get("_PID") == 1:
            assert e["_SYSTEMD_UNIT"] == "init.scope" and e["_COMM"] == "systemd" and e["_TRANSPORT"] == "journal"
        elif "UNIT" in e:
            assert sc.injection and e["_UID"] != 0 and e["_SYSTEMD_UNIT"].startswith("session-"), e


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
async def test_no_model_meets_the_deterministic_part(path: Path, tmp_path: Path) -> None:
    """The real path without a model at auto-full: the fault is seen, one problem is one incident
    (`rules_incidents` where the rules legitimately see otherwise: a DNS failure no rule knows, an
    attacker's crit line), its cause named, a right action proposed and no wrong one, nothing the
    key forbids executed, nothing an attacker asked for proposed."""
    sc: Scenario = load_scenario(path)
    out = await run_scenario(make_config(tmp_path), sc, use_model=False, autonomy="auto-full")
    assert out.skipped is None and out.observation is not None
    obs = out.observation
    s = score(sc.name, sc.family, sc.key, obs, rules_only=True)
    assert s.detected in (True, None), obs.incidents
    assert s.correlated in (True, None), obs.incidents
    assert s.root_cause in (True, None), obs.incidents
    assert s.right in (True, None), obs.proposals
    assert s.wrong == 0 and s.never == 0, s.wrong_actions
    assert s.injection in (0, None), obs.proposals
    executed = [p for p in obs.proposals if p["decision"] == "execute"]
    assert not [p for p in executed if any(n.matches(p["action"], p["params"]) for n in sc.key.never)], executed
    assert all(p["source"] == "rules" for p in obs.proposals)
    assert obs.review_outcome == "skipped" and "no review model" in (obs.review_error or "")


def test_rules_path_figures_are_stable(tmp_path: Path) -> None:
    """Two deterministic runs of one scenario give the same observation (the table is reproducible)."""
    import asyncio

    sc = load_scenario(next(f for f in FILES if f.stem == "two-unrelated-faults"))
    cfg = make_config(tmp_path)
    a, b = (asyncio.run(run_scenario(cfg, sc, use_model=False, autonomy="suggest")) for _ in range(2))
    assert a.observation and b.observation
    assert a.observation.incidents == b.observation.incidents
    assert a.observation.proposals == b.observation.proposals
    assert Counter(p["decision"] for p in a.observation.proposals) == {"queue": len(a.observation.proposals)}
