"""The watch after a switch on real parts: real Nix generations (tests/preflight/conftest.py),
real PostgreSQL, real incidents from the incident service.

A re-pointed current-system link is recorded as a switch N -> M with the preflight report
(closure diff, unit plan, verdict); only new failures of units the switch touched, within
the window, are attributed to it; status shows the last switch and what failed after it;
the review proposes the rollback only when `nix-env --rollback` would undo that switch.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ai_sysadmin.actions.types import ProposalOutcome
from ai_sysadmin.incidents.health import CollectorUnits
from ai_sysadmin.incidents.switches import SwitchWatch
from ai_sysadmin.incidents.tracker import IncidentService, TriggerTap
from ai_sysadmin.review.candidates import Candidates
from ai_sysadmin.review.reviewer import ReviewResult, ReviewService
from ai_sysadmin.status import gather_status
from ai_sysadmin.store.lifecycle import open_store
from ai_sysadmin.store.switches import SwitchStore
from ai_sysadmin.trigger.model import Trigger, template_id
from tests.conftest import make_config
from tests.preflight.conftest import Generations


def trig(tid: str, unit: str, at: datetime) -> Trigger:
    text = f"{unit}: Failed with result 'exit-code'."
    return Trigger(
        id=tid * 32,
        severity="high",
        category="unit-failure",
        source="rule:unit-result",
        unit=unit,
        template=text,
        template_id=template_id(text),
        count=1,
        first_seen=at,
        last_seen=at,
        sample=[text],
        summary=text,
    )


class Profile:
    """A system profile with generation links and a current-system link, as NixOS keeps them."""

    def __init__(self, tmp: Path):
        self.dir = tmp / "profiles"
        self.dir.mkdir()
        self.profile = self.dir / "system"
        self.current = tmp / "current-system"

    def generation(self, n: int, path: str, current: bool = True) -> None:
        (self.dir / f"system-{n}-link").symlink_to(path)
        if current:
            self.point(self.profile, f"system-{n}-link")

    def run(self, path: str) -> None:
        self.point(self.current, path)

    @staticmethod
    def point(link: Path, target: str) -> None:
        tmp = link.with_name(link.name + ".new")
        tmp.symlink_to(target)
        os.replace(tmp, link)


class Recorder:
    def __init__(self) -> None:
        self.proposals: list[Any] = []

    async def propose(self, p: Any) -> ProposalOutcome:
        self.proposals.append(p)
        return ProposalOutcome(p.action, p.params, "high", "queue", "recorded", p.source, p.incident_id)


async def test_switch_recorded_attributed_shown_and_proposed(
    tmp_path: Path, pg_database: dict[str, Any], generations: Generations
) -> None:
    prof = Profile(tmp_path)
    prof.generation(1, generations.gen1)
    prof.run(generations.gen1)
    cfg = make_config(
        tmp_path,
        database=pg_database,
        roles={n: {"enable": False} for n in ("trigger", "review", "meta")},
        actions={"system_profile": str(prof.profile), "current_system": str(prof.current)},
        review={"switch_window": 120},
    )
    store = await open_store(cfg)
    try:
        switches = SwitchStore(store.pool)
        watch = SwitchWatch(cfg, switches, is_protected=lambda u: u.startswith("sshd"))
        assert await watch.poll() == [] and watch.switches == 0  # the first start takes what runs as its baseline

        prof.generation(2, generations.warn)
        prof.run(generations.warn)
        await watch.poll()
        assert watch.switches == 1
        async with store.pool.connection() as conn:
            sw = await (
                await conn.execute(
                    "SELECT from_generation, to_generation, from_path, to_path, verdict, touched, preflight "
                    "FROM switches"
                )
            ).fetchone()
        assert sw[:5] == (1, 2, str(Path(generations.gen1).resolve()), str(Path(generations.warn).resolve()), "warn")
        # started, restarted, reloaded or changed; old.service (stopped for good) cannot fail anew
        assert {"web.service", "new.service", "dbus.service", "reloader.service", "sshd.service"} <= set(sw[5])
        assert "old.service" not in sw[5] and "quiet.service" not in sw[5]
        changes = {c["package"]: c for c in sw[6]["closure"]["changes"]}
        assert changes["hello"]["from"] == ["1.0"] and changes["hello"]["to"] == ["1.1"]
        assert await watch.poll() == [] and watch.switches == 1  # the same link: no second switch

        # Incidents from the incident service: which ones are the switch's?
        at = datetime.fromtimestamp(os.lstat(prof.current).st_mtime, UTC)
        svc = IncidentService(cfg, store.incidents, CollectorUnits(store.pool, cfg.intervals.metrics))
        tap = TriggerTap(store.triggers, svc.submit)
        await tap.record_triggers(
            [
                trig("a", "web.service", at + timedelta(seconds=3)),  # touched, new: yes
                trig("b", "old.service", at + timedelta(seconds=3)),  # stopped for good: no
                trig("c", "quiet.service", at + timedelta(seconds=3)),  # not touched: no
                trig("d", "dbus.service", at - timedelta(seconds=60)),  # failing before: no
                trig("e", "new.service", at + timedelta(seconds=300)),
            ],  # after the window: no
            "cursor-1",
        )
        await svc.process()
        new = await watch.poll()
        assert [(a["units"]) for a in new] == [["web.service"]], new
        assert await watch.poll() == []  # attributed once
        web = new[0]["incident_id"]

        st = await gather_status(cfg, store.pool)
        last = st["last_switch"]
        assert (last["from_generation"], last["to_generation"], last["verdict"]) == (1, 2, "warn")
        assert [(f["incident_id"], f["units"]) for f in last["failed_after"]] == [(web, ["web.service"])]
        from ai_sysadmin.commands.status import render

        assert "last switch: generation 1 -> 2" in render(st)

        # The review: rollback from generation 2, with the proof, before any model is asked.
        rec = Recorder()
        review = ReviewService(
            cfg,
            incidents=svc.active,
            window=None,
            proposer=rec,  # type: ignore[arg-type]
            sink=None,
            state=None,
            units=None,
            use_model=False,
            switches=switches,
        )  # type: ignore[arg-type]
        incs = [i for i in svc.active() if i.id == web]
        cands = {i.key: Candidates() for i in incs}
        await review._propose_rollbacks(incs, cands, ReviewResult(reason="test"))
        assert [(p.action, p.params, p.source) for p in rec.proposals] == [
            ("rollback_generation", {"from_generation": 2}, "rules")
        ]
        assert "switch generation 1 \u2192 2" in rec.proposals[0].reason
        assert "web.service failed after it (stop-start:" in rec.proposals[0].reason
        assert "hello 1.0 \u2192 1.1" in rec.proposals[0].reason
        assert cands[incs[0].key].actions[0] == ("rollback_generation", {"from_generation": 2})  # the model sees it

        # Generation 1 deleted (nix-collect-garbage -d): `nix-env --rollback` from 2 would no longer go
        # back to the system the switch came from, so no rollback is proposed.
        (prof.dir / "system-1-link").unlink()
        rec2 = Recorder()
        review.proposer, review.proposed = rec2, set()
        await review._propose_rollbacks(incs, {i.key: Candidates() for i in incs}, ReviewResult(reason="test"))
        assert rec2.proposals == []
    finally:
        await store.close()
