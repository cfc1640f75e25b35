"""The knowledge base: ChromaDB collections searched by meaning.

* incidents -- summary, diagnosis, resolution and outcome of resolved incidents
* runbooks  -- the markdown runbooks shipped in ai_sysadmin/runbooks, indexed at start
               and re-indexed when a file's content hash changes
* notes     -- operator notes

Embeddings come only from the `embed` role (`/v1/embeddings` of a local llama-server):
every add and query passes vectors explicitly and the collections have no embedding
function, so Chroma's default model downloader is never touched.  Chroma's telemetry
is off.  Embedded (PersistentClient in the state dir) unless `knowledge.url` names a
ChromaDB server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import urlsplit

from ai_sysadmin.config import KnowledgeConfig
from ai_sysadmin.llm import LLMClient

log = logging.getLogger(__name__)

COLLECTIONS = ("incidents", "runbooks", "notes")
SNIPPET_CHARS = 400
# Each document is embedded whole; the embedding model's context bounds how much counts.
EMBED_CHARS = 4000
EMBED_BATCH = 2  # documents per embeddings request


@dataclass(frozen=True)
class Hit:
    id: str
    collection: str
    score: float  # cosine similarity, 1.0 = same direction
    snippet: str
    metadata: dict[str, Any]


def open_chroma(cfg: KnowledgeConfig):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if cfg.url:
        u = urlsplit(cfg.url)
        return chromadb.HttpClient(host=u.hostname, port=u.port or (443 if u.scheme == "https" else 8000),
                                   ssl=u.scheme == "https", settings=settings)
    Path(cfg.path).mkdir(parents=True, exist_ok=True, mode=0o750)
    return chromadb.PersistentClient(path=cfg.path, settings=settings)


def shipped_runbooks() -> dict[str, str]:
    """name -> markdown text of every runbook in the package."""
    root = resources.files("ai_sysadmin") / "runbooks"
    return {p.name.removesuffix(".md"): p.read_text(encoding="utf-8")
            for p in sorted(root.iterdir(), key=lambda p: p.name) if p.name.endswith(".md")}


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KnowledgeBase:
    def __init__(self, client: Any, embedder: LLMClient):
        self._client = client
        self._embedder = embedder
        self._cols = {name: client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"},
                                                            embedding_function=None)
                      for name in COLLECTIONS}

    @classmethod
    async def open(cls, cfg: KnowledgeConfig, embedder: LLMClient) -> "KnowledgeBase":
        client = await asyncio.to_thread(open_chroma, cfg)
        return await asyncio.to_thread(cls, client, embedder)

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        # A few documents per request: each request then fits the role's timeout on a
        # small CPU box, and a slow first index does not fail as one giant request.
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            out += await self._embedder.embed([t[:EMBED_CHARS] for t in texts[i:i + EMBED_BATCH]])
        return out

    async def add(self, collection: str, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        """Insert or replace one document."""
        if collection not in self._cols:
            raise ValueError(f"unknown collection {collection!r}; one of {', '.join(COLLECTIONS)}")
        if not text.strip():
            raise ValueError(f"{collection}/{doc_id}: empty text")
        [vector] = await self._embed([text])
        meta = {k: v for k, v in (metadata or {}).items() if v is not None} or None
        await asyncio.to_thread(self._cols[collection].upsert, ids=[doc_id], embeddings=[vector],
                                documents=[text], metadatas=[meta] if meta else None)

    async def add_incident(self, incident_id: int, summary: str, diagnosis: str = "", resolution: str = "",
                           outcome: str = "") -> None:
        text = "\n".join(f"{k}: {v}" for k, v in (("Summary", summary), ("Diagnosis", diagnosis),
                                                   ("Resolution", resolution), ("Outcome", outcome)) if v)
        await self.add("incidents", f"incident-{incident_id}", text, {"incident_id": incident_id, "outcome": outcome})

    async def add_note(self, note_id: str, text: str, author: str | None = None) -> None:
        await self.add("notes", note_id, text, {"author": author})

    async def index_runbooks(self, runbooks: dict[str, str] | None = None) -> tuple[int, int]:
        """Index shipped runbooks; re-embed only changed ones, drop removed ones. (indexed, unchanged)."""
        runbooks = shipped_runbooks() if runbooks is None else runbooks
        col = self._cols["runbooks"]
        existing = await asyncio.to_thread(col.get, include=["metadatas"])
        stored = {i: (m or {}).get("content_hash") for i, m in zip(existing["ids"], existing["metadatas"] or [])}
        changed = {name: text for name, text in runbooks.items() if stored.get(name) != content_hash(text)}
        if changed:
            vectors = await self._embed(list(changed.values()))
            await asyncio.to_thread(
                col.upsert, ids=list(changed), embeddings=vectors, documents=list(changed.values()),
                metadatas=[{"content_hash": content_hash(t), "title": _title(t, n)} for n, t in changed.items()])
        gone = [i for i in stored if i not in runbooks]
        if gone:
            await asyncio.to_thread(col.delete, ids=gone)
        if changed or gone:
            log.info("runbooks: %d (re)indexed, %d unchanged, %d removed", len(changed),
                     len(runbooks) - len(changed), len(gone))
        return len(changed), len(runbooks) - len(changed)

    async def search(self, text: str, collections: Iterable[str] = COLLECTIONS, k: int = 5) -> list[Hit]:
        """The k best hits over the given collections, best first."""
        names = list(collections)
        for n in names:
            if n not in self._cols:
                raise ValueError(f"unknown collection {n!r}; one of {', '.join(COLLECTIONS)}")
        if not text.strip():
            raise ValueError("search text is empty")
        [vector] = await self._embed([text])
        hits: list[Hit] = []
        for name in names:
            col = self._cols[name]
            n = min(k, await asyncio.to_thread(col.count))
            if n == 0:
                continue
            res = await asyncio.to_thread(col.query, query_embeddings=[vector], n_results=n,
                                          include=["documents", "metadatas", "distances"])
            for i, doc, meta, dist in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0]):
                hits.append(Hit(id=i, collection=name, score=round(1.0 - float(dist), 4),
                                snippet=_snippet(doc or ""), metadata=dict(meta or {})))
        hits.sort(key=lambda h: -h.score)
        return hits[:k]

    async def count(self, collection: str) -> int:
        return await asyncio.to_thread(self._cols[collection].count)


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _snippet(doc: str) -> str:
    doc = " ".join(doc.split())
    return doc if len(doc) <= SNIPPET_CHARS else doc[:SNIPPET_CHARS - 3] + "..."
