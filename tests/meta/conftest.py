"""Fixtures for L4: a meta llama-server with room for the tool catalog, configs, journals, a store.

`meta_server` is the same real part as the shared `llama_meta` fixture (llama-server,
SmolLM2-135M, --jinja with the Qwen2.5 template) with one slot of 8192 tokens: the shared
fixture's two 2048-token slots cannot hold the tool catalog (about 3000 tokens) plus
results.  The tiny model is made to emit tool calls with `tool_choice: "required"` and an
assistant prefill `<tool_call>\\n`; the tests assert structure, never judgement.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from ai_sysadmin.config import Config, parse_config
from rig.llama import LlamaServer, tiny_server
from rig.paths import PartMissing
from rig.require import need

META_CTX = 8192
# Small generation budgets keep each tiny-model turn to a second or two.
TINY_META = {"tool_choice": "required", "prefill": "<tool_call>\n", "step_max_tokens": 96,
             "answer_max_tokens": 48, "diagnosis_max_tokens": 600, "deadline_seconds": 240}


def start_meta_server(logs: Path, alias: str = "meta") -> LlamaServer:
    try:
        server = tiny_server(alias, logs, tools=True, ctx_size=META_CTX, parallel=1)
    except PartMissing as exc:
        need(str(exc))
        raise
    return server.start()


@pytest.fixture(scope="session")
def meta_server(rig_logs: Path) -> Iterator[LlamaServer]:
    server = start_meta_server(rig_logs)
    try:
        yield server
    finally:
        server.stop()


def meta_config(tmp_path: Path, server: LlamaServer | None, *, url: str | None = None, database: dict | None = None,
                meta: dict[str, Any] | None = None, **sections: Any) -> Config:
    """A validated config whose meta role is `server` (or `url`), with tiny-model loop settings."""
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "roles": {"meta": {"url": url or server.url, "model": server.alias if server else "meta",  # type: ignore[union-attr]
                           "timeout": 300, "context_size": META_CTX, "max_retries": 0}},
        "meta": {**TINY_META, **(meta or {})},
        **sections,
    }
    if database is not None:
        data["database"] = database
    return parse_config(data, env={})


def journal_entries(unit: str = "myapp.service", n: int = 6) -> list[dict[str, Any]]:
    """A crash loop as journald records it, timestamped now (so `since` filters see it)."""
    now = int(time.time() * 1_000_000) - 60_000_000
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append({"MESSAGE": f"{unit}: Main process exited, code=exited, status=1/FAILURE", "PRIORITY": 4,
                    "SYSLOG_IDENTIFIER": "systemd", "UNIT": unit, "_SYSTEMD_UNIT": unit, "_PID": 1,
                    "__REALTIME_TIMESTAMP": now + i * 1_000_000})
        out.append({"MESSAGE": f"{unit}: Failed with result 'exit-code'.", "PRIORITY": 3, "SYSLOG_IDENTIFIER": "systemd",
                    "UNIT": unit, "_SYSTEMD_UNIT": unit, "_PID": 1, "__REALTIME_TIMESTAMP": now + i * 1_000_000 + 500_000})
    out.append({"MESSAGE": "Accepted publickey for alice from 10.0.0.5 port 51000", "PRIORITY": 6,
                "SYSLOG_IDENTIFIER": "sshd", "_SYSTEMD_UNIT": "sshd.service", "_PID": 4242,
                "__REALTIME_TIMESTAMP": now + n * 1_000_000})
    return out


@pytest.fixture(scope="session")
def crash_journal(journal_writer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("meta-journal") / f"crash-{uuid.uuid4().hex[:6]}.journal"
    return journal_writer.write(path, journal_entries())


@pytest.fixture()
async def migrated(pg_database: dict[str, Any]):
    """A fresh migrated database: yields (database section, open pool)."""
    from ai_sysadmin.store.db import make_pool
    from ai_sysadmin.store.migrations import migrate

    cfg = parse_config({"database": pg_database}, env={})
    pool = make_pool(cfg.database, max_size=4)
    await pool.open(wait=True, timeout=30)
    await migrate(pool)
    try:
        yield pg_database, pool
    finally:
        await pool.close()
