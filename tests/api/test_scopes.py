"""Key scopes over real HTTP: `read`, `chat`, `approve`; a key without the endpoint's scope gets 403 naming it.

The key file of the session's API (tests/api/conftest.py KEY_SCOPES): admin and ops
with all three scopes, `reader:` and `prometheus:` in the old format (read+chat, and
read only for the scrape key), `webui[chat]`.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import ApiProcess, propose


def _h(api: ApiProcess, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.keys[name]}"}


def _refused(r: httpx.Response, scope: str) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert err["code"] == "insufficient_scope" and err["type"] == "permission_error"
    assert f"`{scope}`" in err["message"], err["message"]


@pytest.mark.parametrize("name", ["reader", "prometheus"])
def test_keys_without_approve_cannot_approve_or_reject(api: ApiProcess, name: str) -> None:
    aid = propose(api, f"web-scope-{name}.service").action_id
    for verb in ("approve", "reject"):
        _refused(
            httpx.post(f"{api.url}/api/v1/actions/{aid}/{verb}", headers=_h(api, name), json={"reason": "looks right"}),
            "approve",
        )
    # Path spellings resolve to the same handler, with the same rule (or to none at all).
    for path in (
        f"/api/v1/actions/{aid}/approve/",
        f"//api/v1/actions/{aid}/approve",
        f"/api/v1/actions/{aid}/./approve",
        f"/api/v1/actions/{aid}%2Fapprove",
    ):
        r = httpx.post(f"{api.url}{path}", headers=_h(api, name), json={"reason": "x"})
        assert r.status_code in (403, 404, 405), (path, r.status_code, r.text)
    shown = httpx.get(f"{api.url}/api/v1/actions/{aid}", headers=_h(api, name))
    assert shown.status_code == 200 and shown.json()["status"] == "queued"  # reading is in its scope
    # Even with the digest it was shown, a key without `approve` is refused.
    digest = shown.json()["digest"]
    _refused(
        httpx.post(
            f"{api.url}/api/v1/actions/{aid}/approve",
            headers=_h(api, name),
            json={"reason": "looks right", "digest": digest},
        ),
        "approve",
    )
    # A key with `approve` reaches the approval path and its name is the approver.
    r = httpx.post(
        f"{api.url}/api/v1/actions/{aid}/approve", headers=_h(api, "admin"), json={"reason": "ok", "digest": digest}
    )
    assert r.status_code == 200 and r.json()["approver"] == "admin", r.text


def test_scrape_key_reads_only(api: ApiProcess) -> None:
    assert httpx.get(f"{api.url}/metrics", headers=_h(api, "prometheus"), timeout=30).status_code == 200
    assert httpx.get(f"{api.url}/api/v1/incidents", headers=_h(api, "prometheus")).status_code == 200
    _refused(
        httpx.post(
            f"{api.url}/v1/chat/completions",
            headers=_h(api, "prometheus"),
            json={"model": "trigger", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
        ),
        "chat",
    )
    _refused(
        httpx.post(f"{api.url}/v1/embeddings", headers=_h(api, "prometheus"), json={"model": "embed", "input": "x"}),
        "chat",
    )


def test_chat_key_chats_and_lists_models_but_reads_nothing_else(api: ApiProcess) -> None:
    r = httpx.get(f"{api.url}/v1/models", headers=_h(api, "webui"), timeout=30)
    assert r.status_code == 200 and r.json()["data"]
    r = httpx.post(
        f"{api.url}/v1/chat/completions",
        headers=_h(api, "webui"),
        timeout=120,
        json={"model": "trigger", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    )
    assert r.status_code == 200, r.text
    for path in ("/api/v1/status", "/api/v1/incidents", "/api/v1/actions", "/metrics"):
        _refused(httpx.get(f"{api.url}{path}", headers=_h(api, "webui")), "read")
    _refused(
        httpx.post(f"{api.url}/api/v1/actions/1/approve", headers=_h(api, "webui"), json={"reason": "x"}), "approve"
    )
