"""The API under test: `ai-sysadmin api` as a real process over real llama-servers and PostgreSQL.

One API process for the session, configured with two keys and the roles:
  trigger -> the shared tiny trigger server      review -> a server of our own (killed and
  meta    -> a tools server of our own with a        restarted by the failure tests; 1 s timeout)
             context large enough for the agent  embed  -> the shared embedding server
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rig.llama import LlamaServer
from rig.net import free_port, wait_until
from rig.proc import exit_report, spawn_logged
from tests.conftest import _server

REPO = Path(__file__).resolve().parents[2]


@dataclass
class ApiProcess:
    """`python -m ai_sysadmin --config FILE api`, stopped with SIGTERM at the end."""

    config: dict[str, Any]
    workdir: Path
    keys: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    # Start with this soft RLIMIT_NOFILE (systemd's default is 1024), as a unit without
    # LimitNOFILE= would; None: inherit the test's.
    nofile_soft: int | None = None

    @property
    def port(self) -> int:
        return int(self.config["api"]["port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "api.log"

    def start(self, timeout: float = 60.0) -> ApiProcess:
        cfg_path = self.workdir / "config.json"
        cfg_path.write_text(json.dumps(self.config))
        self.proc = spawn_logged(
            [sys.executable, "-m", "ai_sysadmin", "--config", str(cfg_path), "api"],
            self.log_path,
            cwd=str(REPO),
            preexec_fn=self._limits,
        )
        wait_until(
            self._healthy,
            timeout,
            f"ai-sysadmin api on :{self.port}",
            alive=lambda: exit_report(self.proc, self.log_path),
        )
        return self

    def _limits(self) -> None:
        if self.nofile_soft is not None:
            import resource

            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile_soft, hard))

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def api_meta(rig_logs: Path) -> Iterator[LlamaServer]:
    # The agent's tool prompt is ~3k tokens: 8k per slot, two slots.
    yield from _server("meta", rig_logs, log_name="llama-api-meta.log", tools=True, ctx_size=16384, parallel=2)


@pytest.fixture(scope="session")
def api_review(rig_logs: Path) -> Iterator[LlamaServer]:
    yield from _server("review", rig_logs, log_name="llama-api-review.log", parallel=2)


@pytest.fixture(scope="session")
def api_db(pg_cluster) -> Iterator[dict[str, Any]]:
    """A migrated database of the API tests' own."""
    name = f"t_api_{secrets.token_hex(4)}"
    pg_cluster.create_database(name)
    section = pg_cluster.database_config(name)
    asyncio.run(_migrate(section))
    try:
        yield section
    finally:
        if pg_cluster.running():
            pg_cluster.drop_database(name)


async def _migrate(section: dict[str, Any]) -> None:
    from ai_sysadmin.config import parse_config
    from ai_sysadmin.store.db import make_pool
    from ai_sysadmin.store.migrations import migrate

    cfg = parse_config({"database": section}, env={})
    pool = make_pool(cfg.database, max_size=1)
    await pool.open(wait=True, timeout=30)
    try:
        await migrate(pool)
    finally:
        await pool.close()


def base_config(
    tmp: Path,
    *,
    trigger: LlamaServer,
    review: LlamaServer,
    meta: LlamaServer,
    embed: LlamaServer | None,
    db: dict[str, Any],
    api: dict[str, Any],
) -> dict[str, Any]:
    approval_key = tmp / "approval.key"
    if not approval_key.exists():
        approval_key.write_text(secrets.token_hex(32))
    roles: dict[str, Any] = {
        "trigger": {"url": trigger.url, "model": trigger.alias, "timeout": 300},
        # A short timeout: the 504 test needs one; nothing else waits long on review.
        "review": {"url": review.url, "model": review.alias, "timeout": 1.0},
        "meta": {"url": meta.url, "model": meta.alias, "timeout": 300, "context_size": 8192},
    }
    if embed is not None:
        roles["embed"] = {"url": embed.url, "model": embed.alias, "timeout": 120}
    return {
        "state_dir": str(tmp / "state"),
        "roles": roles,
        "database": db,
        "api": {"host": "127.0.0.1", "port": free_port(), **api},
        "actions": {"approval_key_file": str(approval_key)},
        # The tiny model needs help to call tools at all (see COMMON test model facts).
        "meta": {
            "tool_choice": "required",
            "prefill": "<tool_call>\n",
            "max_steps": 1,
            "deadline_seconds": 240,
            "step_max_tokens": 96,
            "answer_max_tokens": 48,
            "diagnosis_max_tokens": 3072,
            "knowledge_hits": 0,
        },
    }


# The scopes each test key is written with in the key file; None: a line in the format
# from before scopes (`name:key`), which gets read+chat -- and `prometheus` read only.
KEY_SCOPES: dict[str, str | None] = {
    "admin": "read,chat,approve",
    "ops": "read,chat,approve",
    "reader": None,
    "prometheus": None,
    "webui": "chat",
}


def key_file_text(keys: dict[str, str]) -> str:
    return "# name[scopes]:key\n" + "".join(
        f"{n}{'[' + KEY_SCOPES[n] + ']' if KEY_SCOPES.get(n) else ''}:{k}\n" for n, k in keys.items()
    )


@pytest.fixture(scope="session")
def api_keys() -> dict[str, str]:
    return {name: "k-" + secrets.token_hex(16) for name in KEY_SCOPES}


@pytest.fixture(scope="session")
def api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    api_review: LlamaServer,
    api_meta: LlamaServer,
    llama_embed: LlamaServer,
    api_db: dict[str, Any],
    api_keys: dict[str, str],
) -> Iterator[ApiProcess]:
    tmp = tmp_path_factory.mktemp("api")
    key_file = tmp / "api.keys"
    key_file.write_text(key_file_text(api_keys))
    cfg = base_config(
        tmp,
        trigger=llama_trigger,
        review=api_review,
        meta=api_meta,
        embed=llama_embed,
        db=api_db,
        api={"api_key_file": str(key_file), "max_concurrent_per_key": 3},
    )
    proc = ApiProcess(cfg, tmp, keys=api_keys)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def open_api(
    tmp_path_factory: pytest.TempPathFactory,
    llama_trigger: LlamaServer,
    api_review: LlamaServer,
    api_meta: LlamaServer,
    api_db: dict[str, Any],
) -> Iterator[ApiProcess]:
    """Loopback without any key: model endpoints open, approvals still refused."""
    tmp = tmp_path_factory.mktemp("open-api")
    # Titles from `review`, which the failure test kills: then they must fall back to the selected model.
    cfg = base_config(
        tmp,
        trigger=llama_trigger,
        review=api_review,
        meta=api_meta,
        embed=None,
        db=api_db,
        api={"background_role": "review"},
    )
    proc = ApiProcess(cfg, tmp)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def slots_busy(server: LlamaServer) -> int:
    with urllib.request.urlopen(f"{server.url}/slots", timeout=5) as r:
        return sum(1 for s in json.load(r) if s.get("is_processing"))


def wait_slots_free(server: LlamaServer, timeout: float = 30.0) -> None:
    wait_until(lambda: slots_busy(server) == 0, timeout, f"llama-server {server.alias} slots free")


def metric(api: ApiProcess, name: str, **labels: str) -> float:
    """One sample of the API's /metrics page (0 when absent)."""
    req = urllib.request.Request(
        f"{api.url}/metrics", headers={"Authorization": f"Bearer {next(iter(api.keys.values()))}"} if api.keys else {}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def _with_pool(api: ApiProcess, fn) -> Any:
    from ai_sysadmin.config import parse_config
    from ai_sysadmin.store.db import make_pool

    cfg = parse_config(api.config, env={})
    pool = make_pool(cfg.database, max_size=2)
    await pool.open(wait=True, timeout=30)
    try:
        return await fn(cfg, pool)
    finally:
        await pool.close()


def propose(api: ApiProcess, unit: str) -> Any:
    """A real proposal through the real ActionService: the policy (autonomy suggest) queues it."""
    from ai_sysadmin.actions.proposals import ActionService
    from ai_sysadmin.actions.types import Proposal
    from ai_sysadmin.store.incidents import IncidentStore

    async def go(cfg, pool):
        incident = await IncidentStore(pool).open(f"{unit} failed", "high", "unit-failure", unit=unit)
        return await ActionService(cfg, pool).propose(
            Proposal(
                action="restart_unit", params={"unit": unit}, reason="unit failed", source="meta", incident_id=incident
            )
        )

    return asyncio.run(_with_pool(api, go))
