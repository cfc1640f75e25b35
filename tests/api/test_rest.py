"""REST: status, incidents, actions, approve / reject with the key's name as the actor."""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar

import httpx
import pytest

from ai_sysadmin.api.agent import Renderer
from tests.api.conftest import ApiProcess, propose


def _h(api: ApiProcess, name: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[name]}"}


def test_status_carries_models(api: ApiProcess) -> None:
    r = httpx.get(f"{api.url}/api/v1/status", headers=_h(api), timeout=30)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["database"]["reachable"] is True  # the status module's part of the document
    models = doc["models"]
    assert set(models) == {"trigger", "review", "meta", "embed"}
    meta = models["meta"]
    assert meta["up"] and meta["served_model"] == "meta" and meta["context_size"] == 8192
    assert meta["slots_total"] == 2 and meta["slots_busy"] == 0 and meta["model_file"].endswith(".gguf")


def test_status_shows_the_last_switch(api: ApiProcess) -> None:
    """The watch after a switch (docs/preflight.md): the API's status carries the last switch and its verdict."""
    import asyncio
    from datetime import datetime

    from ai_sysadmin.store.switches import SwitchRow, SwitchStore
    from tests.api.conftest import _with_pool

    row = SwitchRow(
        datetime.now(UTC),
        7,
        8,
        "/nix/store/a-nixos-system-7",
        "/nix/store/b-nixos-system-8",
        "warn",
        {"verdict": "warn", "reasons": ["protected unit sshd.service is restarted"]},
        ("sshd.service", "web.service"),
    )
    from rig.net import wait_until

    asyncio.run(_with_pool(api, lambda cfg, pool: SwitchStore(pool).record(row)))
    seen: dict = {}

    def shown() -> bool:
        # Status is shared by all callers for 2 s (api/coalesce.py): an earlier test's round may still be served.
        r = httpx.get(f"{api.url}/api/v1/status", headers=_h(api), timeout=30)
        assert r.status_code == 200, r.text
        seen.update(r.json())
        return seen.get("last_switch") is not None

    wait_until(shown, 10, "the switch in /api/v1/status", poll=0.5)
    last = seen["last_switch"]
    assert (last["from_generation"], last["to_generation"], last["verdict"]) == (7, 8, "warn"), last
    assert last["reasons"] == ["protected unit sshd.service is restarted"] and last["failed_after"] == []


def test_incidents_and_actions_and_approval_by_key_name(api: ApiProcess) -> None:
    outcome = propose(api, "web-approve.service")
    assert outcome.decision == "queue" and outcome.action_id
    aid = outcome.action_id
    incidents = httpx.get(f"{api.url}/api/v1/incidents", headers=_h(api)).json()["data"]
    assert any(i["id"] == outcome.incident_id for i in incidents)
    one = httpx.get(f"{api.url}/api/v1/incidents/{outcome.incident_id}", headers=_h(api)).json()
    assert [a["id"] for a in one["actions"]] == [aid]
    listed = httpx.get(f"{api.url}/api/v1/actions?status=queued", headers=_h(api)).json()["data"]
    assert aid in [a["id"] for a in listed]

    r = httpx.post(f"{api.url}/api/v1/actions/{aid}/approve", headers=_h(api, "ops"), json={})
    assert r.status_code == 400 and r.json()["error"]["param"] == "reason"
    r = httpx.post(f"{api.url}/api/v1/actions/{aid}/approve", json={"reason": "no key"})
    assert r.status_code == 401
    # what the person approves is what GET showed: its digest goes back with the approval
    digest = httpx.get(f"{api.url}/api/v1/actions/{aid}", headers=_h(api)).json()["digest"]
    r = httpx.post(f"{api.url}/api/v1/actions/{aid}/approve", headers=_h(api, "ops"), json={"reason": "looks right"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "digest"
    r = httpx.post(
        f"{api.url}/api/v1/actions/{aid}/approve",
        headers=_h(api, "ops"),
        json={"reason": "looks right", "digest": "0" * 64},
    )
    assert r.status_code == 409 and f"action {aid} changed since you looked at it" in r.json()["error"]["message"]
    r = httpx.post(
        f"{api.url}/api/v1/actions/{aid}/approve",
        headers=_h(api, "ops"),
        json={"reason": "looks right", "digest": digest},
    )
    assert r.status_code == 200, r.text
    assert r.json()["approver"] == "ops" and r.json()["digest"] == digest
    shown = httpx.get(f"{api.url}/api/v1/actions/{aid}", headers=_h(api)).json()
    assert shown["status"] == "approved"
    assert shown["steps"][-1]["actor"] == "ops" and shown["approvals"][0]["signed"] is True
    assert shown["approvals"][0]["digest"] == digest
    r = httpx.post(
        f"{api.url}/api/v1/actions/{aid}/approve", headers=_h(api), json={"reason": "again", "digest": digest}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_state"


def test_reject_and_error_cases(api: ApiProcess) -> None:
    aid = propose(api, "web-reject.service").action_id
    r = httpx.post(f"{api.url}/api/v1/actions/{aid}/reject", headers=_h(api), json={"reason": "  "})
    assert r.status_code == 400 and r.json()["error"]["param"] == "reason"
    r = httpx.post(f"{api.url}/api/v1/actions/{aid}/reject", headers=_h(api), json={"reason": "not now"})
    assert r.status_code == 200 and r.json()["rejected_by"] == "admin"
    assert httpx.get(f"{api.url}/api/v1/actions/999999", headers=_h(api)).status_code == 404
    r = httpx.get(f"{api.url}/api/v1/actions/abc", headers=_h(api))
    assert r.status_code == 400 and r.json()["error"]["param"] == "id"
    assert httpx.get(f"{api.url}/api/v1/incidents/424242", headers=_h(api)).status_code == 404
    r = httpx.get(f"{api.url}/api/v1/incidents?status=bogus", headers=_h(api))
    assert r.status_code == 400 and r.json()["error"]["param"] == "status"


def test_approval_needs_a_key_even_on_open_loopback(open_api: ApiProcess) -> None:
    # No keys at all: the model endpoints are open (Open WebUI's dummy key is ignored) ...
    r = httpx.get(f"{open_api.url}/v1/models", headers={"Authorization": "Bearer sk-anything"})
    assert r.status_code == 200
    # ... but nobody can approve: there is no key name to record as the actor.
    r = httpx.post(f"{open_api.url}/api/v1/actions/1/approve", json={"reason": "please"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_required"


def test_proposals_render_with_id_risk_and_decision(api: ApiProcess) -> None:
    """What the agent prints for a proposal, from a real ProposalOutcome of the real policy.

    (The tiny test model rarely proposes on its own, so the end-to-end agent tests cannot
    rely on one; the rendering is checked on a real outcome instead.)"""
    outcome = propose(api, "web-render.service")

    class Inv:
        proposals: ClassVar[list[Any]] = [outcome]
        finding_id = None
        outcome_ = "ok"

    render = Renderer()
    reasoning, answer = render.on_event("answer_delta", {"text": "restart it"})  # (reasoning, content)
    text = answer + render.finish(Inv(), streamed=True)
    assert reasoning == "" and answer == "restart it"
    assert f"action **#{outcome.action_id}** `restart_unit`" in text
    assert "risk **low**" in text and "policy decision **queue**" in text
    assert "POST /api/v1/actions/ID/approve" in text and "chat cannot approve" in text


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["api", "--host", "0.0.0.0"], "--host: 0.0.0.0 is not loopback"),
    ],
)
def test_refuses_to_listen_beyond_loopback_without_keys(tmp_path, argv, needle) -> None:
    import json
    import subprocess
    import sys

    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path)}))
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(cfg), *argv], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr
    cfg.write_text(json.dumps({"state_dir": str(tmp_path), "api": {"host": "0.0.0.0"}}))
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(cfg), "api"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2 and "api.api_key_file: required when api.host (0.0.0.0) is not loopback" in r.stderr
