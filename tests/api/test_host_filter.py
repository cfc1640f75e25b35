"""`?host=` on the REST listings and status, and the `host` label on `/metrics` (docs/fleet.md),
on a real `ai-sysadmin api` process over real PostgreSQL.  No model server is needed: every role is
off, and the reads run without keys on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rig.net import free_port
from tests.api.conftest import ApiProcess
from tests.store.test_host_filters import HUB, fleet_rows

ROLES_OFF = {r: {"enable": False} for r in ("trigger", "review", "meta", "embed")}


@pytest.fixture()
def hub_api(pg_database: dict[str, Any], tmp_path: Path) -> Iterator[tuple[ApiProcess, dict[str, int]]]:
    import asyncio

    ids = asyncio.run(fleet_rows(tmp_path, pg_database))
    config = {
        "state_dir": str(tmp_path / "state"),
        "roles": ROLES_OFF,
        "database": pg_database,
        "fleet": HUB,
        "api": {"host": "127.0.0.1", "port": free_port()},
    }
    api = ApiProcess(config, tmp_path).start()
    try:
        yield api, ids
    finally:
        api.stop()


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    }


def test_host_filter_on_incidents_actions_and_metrics(hub_api: tuple[ApiProcess, dict[str, int]]) -> None:
    api, ids = hub_api
    get = lambda path: httpx.get(f"{api.url}{path}", timeout=30)  # noqa: E731

    everyone = get("/api/v1/incidents").json()["data"]
    assert {(i["id"], tuple(i["hosts"])) for i in everyone} == {
        (ids["fleet"], ("web-a", "web-b")),
        (ids["c"], ("web-c",)),
    }
    r = get("/api/v1/incidents?host=web-b")
    assert r.status_code == 200 and [i["id"] for i in r.json()["data"]] == [ids["fleet"]]
    assert [i["id"] for i in get("/api/v1/incidents?host=web-c&status=open").json()["data"]] == [ids["c"]]
    assert get("/api/v1/incidents?host=nowhere").json()["data"] == []
    one = get(f"/api/v1/incidents/{ids['fleet']}").json()
    assert [h["host"] for h in one["hosts"]] == ["web-a", "web-b"]
    assert sorted(a["host"] for a in one["actions"]) == ["web-a", "web-b"]

    rows = get("/api/v1/actions?host=web-a").json()["data"]
    assert [(a["host"], a["incident_id"]) for a in rows] == [("web-a", ids["fleet"])]
    assert {a["host"] for a in get("/api/v1/actions").json()["data"]} == {"web-a", "web-b", "web-c"}

    # Status as `ai-sysadmin status --host` shows it (tests/store/test_host_filters.py).
    st = get("/api/v1/status?host=web-c").json()
    assert st["host"] == "web-c" and [i["id"] for i in st["open_incidents"]] == [ids["c"]]
    assert st["pending_approvals"] == 1 and st["layers"]["l1"]["triggers_last_hour"] == 1
    st = get("/api/v1/status?host=web-a").json()  # its own round, not web-c's shared one
    assert st["host"] == "web-a" and [i["id"] for i in st["open_incidents"]] == [ids["fleet"]]
    st = get("/api/v1/status").json()
    assert "host" not in st and {i["id"] for i in st["open_incidents"]} == {ids["fleet"], ids["c"]}
    assert st["pending_approvals"] == 3 and st["layers"]["l1"]["triggers_last_hour"] == 3

    for path in ("/api/v1/incidents", "/api/v1/actions", "/api/v1/status"):
        for bad in ("web%20a", "-x", "a" * 64, "%0aweb-a"):
            r = get(f"{path}?host={bad}")
            assert r.status_code == 400, (path, bad, r.text)
            err = r.json()["error"]
            assert err["param"] == "host" and "must be a host id" in err["message"], err

    text = get("/metrics").text
    incidents = samples(text, "ai_sysadmin_incidents")
    # Under the host each opened on: the fleet incident once, under web-a.
    assert incidents == {
        (("host", "web-a"), ("status", "open")): 1.0,
        (("host", "web-c"), ("status", "open")): 1.0,
    }
    assert samples(text, "ai_sysadmin_incidents_on_host") == {
        (("host", "web-a"), ("status", "open")): 1.0,
        (("host", "web-b"), ("status", "open")): 1.0,
        (("host", "web-c"), ("status", "open")): 1.0,
    }
    assert samples(text, "ai_sysadmin_fleet_incidents") == {(("status", "open"),): 1.0}
    assert samples(text, "ai_sysadmin_actions") == {
        (("host", h), ("status", "queued")): 1.0 for h in ("web-a", "web-b", "web-c")
    }
    assert sum(samples(text, "ai_sysadmin_triggers").values()) == 3
    assert {dict(k)["host"] for k in samples(text, "ai_sysadmin_triggers")} == {"web-a", "web-b", "web-c"}
