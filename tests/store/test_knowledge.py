"""ChromaDB with real embeddings from llama-server (--embeddings): add, search, persist, runbooks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_sysadmin.config import KnowledgeConfig
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.store.knowledge import KnowledgeBase, shipped_runbooks
from tests.conftest import copy_of, role_config


@pytest.fixture()
async def embedder(llama_embed):
    async with LLMClient(role_config(llama_embed, "embed", timeout=300)) as client:
        yield client


def test_the_required_runbooks_are_shipped() -> None:
    names = set(shipped_runbooks())
    assert {
        "oom",
        "disk-full",
        "crash-loop",
        "nixos-rebuild-failed",
        "nix-store-corruption",
        "time-sync",
        "certificate-expiry",
        "ssh-brute-force",
    } <= names
    assert all(text.startswith("# ") for text in shipped_runbooks().values())


async def test_add_search_and_persist_across_restart(tmp_path: Path, embedder: LLMClient) -> None:
    cfg = KnowledgeConfig(path=str(tmp_path / "kb"), url=None)
    kb = await KnowledgeBase.open(cfg, embedder)
    await kb.add_incident(
        1,
        "nginx.service crash loop after config change",
        "syntax error in nginx.conf",
        "rolled back the generation",
        "verified",
    )
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


async def test_runbooks_indexed_once_and_reindexed_on_change(
    tmp_path: Path, embedder: LLMClient, indexed_runbooks: Path
) -> None:
    kb = await KnowledgeBase.open(copy_of(indexed_runbooks, tmp_path), embedder)
    books = shipped_runbooks()
    assert await kb.index_runbooks() == (0, len(books))  # unchanged: nothing re-embedded
    changed = dict(books)
    changed["oom"] += "\nAlso check `systemd-oomd` decisions.\n"
    del changed["time-sync"]
    assert await kb.index_runbooks(changed) == (1, len(books) - 2)
    assert await kb.count("runbooks") == len(books) - 1
    hits = await kb.search(changed["oom"], ["runbooks"], k=1)
    assert hits[0].id == "oom" and hits[0].metadata["title"].startswith("Out of memory")


# ------------------------------------------------------------------ hybrid ranking (words + meaning)


def test_tokens_keep_compound_names_and_their_parts() -> None:
    from ai_sysadmin.store.knowledge import tokens

    toks = tokens("nginx.service: No space left on device writing /var/log/nginx; restarting")
    assert {"nginx.service", "nginx", "service", "/var/log/nginx", "var", "log", "space", "device", "restart"} <= set(
        toks
    )
    assert "on" not in toks and "no" not in toks  # stopwords


async def test_hybrid_ranking_finds_exact_words_a_weak_embedder_misses(
    tmp_path: Path, embedder: LLMClient, indexed_runbooks: Path
) -> None:
    kb = await KnowledgeBase.open(copy_of(indexed_runbooks, tmp_path), embedder)
    assert await kb.index_runbooks() == (0, len(shipped_runbooks()))  # the copy is complete
    query = "the disk is full, no space left on device"
    hybrid = await kb.search(query, ["runbooks"], k=5)
    assert hybrid[0].id == "disk-full" and hybrid[0].lexical_rank == 1 and hybrid[0].vector_rank is not None
    assert 0 < hybrid[0].score <= 1.0 and hybrid[0].score > hybrid[1].score
    lexical = await kb.search(query, ["runbooks"], k=5, mode="lexical")
    assert lexical[0].id == "disk-full" and all(h.vector_rank is None for h in lexical)
    vector = await kb.search(query, ["runbooks"], k=8, mode="vector")
    assert all(h.lexical_rank is None for h in vector) and len(vector) == len(shipped_runbooks())
    # Exact unit names and error strings match lexically across collections.
    await kb.add_note("n1", "postgresql.service on db1 logs 'could not write to file pg_wal': /var full", "bob", 12)
    hits = await kb.search("pg_wal could not write", k=3)
    assert hits[0].id == "n1" and hits[0].metadata == {"author": "bob", "incident_id": 12}


async def test_search_ranks_by_words_alone_when_the_embedder_is_down(tmp_path: Path, indexed_runbooks: Path) -> None:
    from ai_sysadmin.store.knowledge import EmbedderUnavailable
    from rig.net import free_port

    cfg = copy_of(indexed_runbooks, tmp_path)
    dead = role_config(None, "embed", url=f"http://127.0.0.1:{free_port()}", max_retries=0)
    async with LLMClient(dead) as down:
        offline = await KnowledgeBase.open(cfg, down)
        hits = await offline.search("Start request repeated too quickly", ["runbooks"], k=3)
        assert hits[0].id == "crash-loop" and hits[0].vector_rank is None
        assert offline.last_vector_error and "cannot reach" in offline.last_vector_error
        with pytest.raises(EmbedderUnavailable):
            await offline.search("x", mode="vector")
        with pytest.raises(ValueError, match="empty"):
            await offline.search("   ")
