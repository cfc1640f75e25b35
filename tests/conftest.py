"""Fixtures that start real parts: llama-server per role, a PostgreSQL cluster, journal files.

Every fixture skips with a one-line reason only when its part cannot be provisioned on
this machine; under scripts/test.sh (and so in CI) a missing part fails the run instead
(see rig/require.py).  Every process started here is stopped at the end of its scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import Config, KnowledgeConfig, RoleConfig, parse_config
from rig.journal import JournalWriter
from rig.llama import LlamaServer, judge_server, tiny_server
from rig.paths import PartMissing
from rig.postgres import PgCluster
from rig.require import need

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def rig_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rig-logs")


def _server(
    alias: str, logs: Path, *, log_name: str | None = None, judge: bool = False, **kw: Any
) -> Iterator[LlamaServer]:
    """A started tiny (or judge) llama-server, stopped at the end.

    `log_name` keeps a second server of one alias apart."""
    try:
        server = (judge_server if judge else tiny_server)(alias, logs, **kw)
    except PartMissing as exc:
        need(str(exc))
    if log_name:
        server.log_path = logs / log_name
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_trigger(rig_logs: Path) -> Iterator[LlamaServer]:
    """The trigger role: SmolLM2-135M with its own chat template."""
    yield from _server("trigger", rig_logs)


@pytest.fixture(scope="session")
def llama_review(rig_logs: Path) -> Iterator[LlamaServer]:
    yield from _server("review", rig_logs)


@pytest.fixture(scope="session")
def llama_meta(rig_logs: Path) -> Iterator[LlamaServer]:
    """The meta role: --jinja with the Qwen2.5 template, so tool calls are parsed."""
    yield from _server("meta", rig_logs, tools=True)


@pytest.fixture(scope="session")
def llama_embed(rig_logs: Path) -> Iterator[LlamaServer]:
    """The embed role: the tiny model served with --embeddings (real, if small, vectors)."""
    yield from _server("embed", rig_logs, embeddings=True)


@pytest.fixture(scope="session")
def llama_judge(rig_logs: Path) -> Iterator[LlamaServer]:
    """Qwen2.5-Coder-1.5B-Instruct with --jinja: the instruct model that can actually judge
    (review answers, tool calls); SmolLM2-135M only proves the plumbing."""
    yield from _server("judge", rig_logs, judge=True, tools=True, ctx_size=8192, parallel=1)


def role_config(server: LlamaServer | None, name: str, url: str | None = None, **overrides: Any) -> RoleConfig:
    """A validated RoleConfig pointing at `server` (or at `url`)."""
    # A generous default timeout: the tests run on 2 loaded cores; the timeout tests set their own.
    data = {"url": url or server.url, "model": server.alias if server else name, "timeout": 300, **overrides}  # type: ignore[union-attr]
    cfg = parse_config({"roles": {name: data}}, env={})
    role = getattr(cfg.roles, name)
    assert role is not None
    return role


def _cluster() -> Iterator[PgCluster]:
    try:
        cluster = PgCluster.create()
    except PartMissing as exc:
        need(str(exc))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    yield from _cluster()


@pytest.fixture()
def private_pg_cluster() -> Iterator[PgCluster]:
    """A cluster of the test's own: stopping it must not disturb the shared session cluster."""
    yield from _cluster()


@pytest.fixture()
def pg_database(pg_cluster: PgCluster) -> Iterator[dict[str, Any]]:
    """A fresh, empty database; yields the `database` config section pointing at it."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    try:
        yield pg_cluster.database_config(name)
    finally:
        if pg_cluster.running():
            pg_cluster.drop_database(name)


@pytest.fixture(scope="session")
def journal_writer() -> JournalWriter:
    try:
        return JournalWriter()
    except PartMissing as exc:
        need(str(exc))
        raise


def make_config(tmp_path: Path, **sections: Any) -> Config:
    """A validated Config with its state under tmp_path, plus the given sections."""
    data = {"state_dir": str(tmp_path / "state"), **sections}
    return parse_config(data, env={})


@pytest.fixture(scope="session")
async def indexed_runbooks(llama_embed: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A knowledge directory with the shipped runbooks embedded once (by the embed role's
    tiny model); tests that search runbooks, rather than index them, use copies of it."""
    from ai_sysadmin.llm import LLMClient
    from ai_sysadmin.store.knowledge import KnowledgeBase, shipped_runbooks

    path = tmp_path_factory.mktemp("kb-indexed") / "kb"
    async with LLMClient(role_config(llama_embed, "embed", timeout=300)) as client:
        kb = await KnowledgeBase.open(KnowledgeConfig(path=str(path), url=None), client)
        assert await kb.index_runbooks() == (len(shipped_runbooks()), 0)  # a fresh index embeds every runbook
    return path


def copy_of(indexed: Path, tmp_path: Path, name: str = "kb") -> KnowledgeConfig:
    """A copy of a knowledge directory under `tmp_path/name`, as its configuration."""
    import shutil

    shutil.copytree(indexed, tmp_path / name)
    return KnowledgeConfig(path=str(tmp_path / name), url=None)
