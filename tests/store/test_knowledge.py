"""ChromaDB with real embeddings from llama-server (--embeddings): add, search, persist, runbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.config import KnowledgeConfig
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.store.knowledge import KnowledgeBase, shipped_runbooks
from tests.conftest import role_config


@pytest.fixture()
async def embedder(llama_embed):
    async with LLMClient(role_config(llama_embed, "embed", timeout=300)) as client:
        yield client


def test_the_required_runbooks_are_shipped() -> None:
    names = set(shipped_runbooks())
    assert {"oom", "disk-full", "crash-loop", "nixos-rebuild-failed", "nix-store-corruption", "time-sync",
            "certificate-expiry", "ssh-brute-force"} <= names
    assert all(text.startswith("# ") for text in shipped_runbooks().values())


async def test_add_search_and_persist_across_restart(tmp_path: Path, embedder: LLMClient) -> None:
    cfg = KnowledgeConfig(path=str(tmp_path / "kb"), url=None)
    kb = await KnowledgeBase.open(cfg, embedder)
    await kb.add_incident(1, "nginx.service crash loop after config change", "syntax error in nginx.conf",
                          "rolled back the generation", "verified")
    await kb.add_note("note-1", "The backup disk /mnt/backup is expected to be 95% full; ignore it.", "alice")
    hits = await kb.search("nginx.service crash loop after config change", ["incidents", "notes"], k=2)
    assert hits[0].id == "incident-1" and hits[0].collection == "incidents"
    assert 1.0 >= hits[0].score > hits[1].score
    assert "Diagnosis: syntax error" in hits[0].snippet
    with pytest.raises(ValueError, match="unknown collection 'incident'"):
        await kb.search("x", ["incident"])

    del kb  # a new process opening the same directory
    again = await KnowledgeBase.open(cfg, embedder)
    assert await again.count("incidents") == 1 and await again.count("notes") == 1
    hits = await again.search("The backup disk /mnt/backup is expected to be 95% full; ignore it.", k=1)
    assert [(h.id, h.metadata.get("author")) for h in hits] == [("note-1", "alice")]


async def test_runbooks_indexed_once_and_reindexed_on_change(tmp_path: Path, embedder: LLMClient) -> None:
    cfg = KnowledgeConfig(path=str(tmp_path / "kb"), url=None)
    kb = await KnowledgeBase.open(cfg, embedder)
    books = shipped_runbooks()
    assert await kb.index_runbooks() == (len(books), 0)
    assert await kb.index_runbooks() == (0, len(books))  # unchanged: nothing re-embedded
    changed = dict(books)
    changed["oom"] += "\nAlso check `systemd-oomd` decisions.\n"
    del changed["time-sync"]
    assert await kb.index_runbooks(changed) == (1, len(books) - 2)
    assert await kb.count("runbooks") == len(books) - 1
    hits = await kb.search(changed["oom"], ["runbooks"], k=1)
    assert hits[0].id == "oom" and hits[0].metadata["title"].startswith("Out of memory")
