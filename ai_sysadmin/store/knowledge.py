"""The knowledge base: ChromaDB collections searched by words and by meaning (hybrid).

* incidents -- summary, diagnosis, resolution and outcome of resolved incidents
* runbooks  -- the markdown runbooks shipped in ai_sysadmin/runbooks, indexed at start
               and re-indexed when a file's content hash changes
* notes     -- operator notes (`ai-sysadmin knowledge note`)

Retrieval must not depend on a good embedding model: a search ranks the documents
lexically (BM25 via rank_bm25, over tokens that keep unit names, paths and error
strings whole *and* split into their parts) and by vector similarity, and fuses the
two rankings with reciprocal rank fusion (RRF).  When the embedding model is down the
lexical ranking alone answers (`Hit.vector_rank` is None then).

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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from ai_sysadmin.config import KnowledgeConfig
from ai_sysadmin.llm import LLMClient, LLMError

if TYPE_CHECKING:  # chromadb is imported when a knowledge base opens (it is slow to import)
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)

COLLECTIONS = ("incidents", "runbooks", "notes")
SNIPPET_CHARS = 400
# Each document is embedded whole; the embedding model's context bounds how much counts.
EMBED_CHARS = 4000
EMBED_BATCH = 2  # documents per embeddings request


SEARCH_MODES = ("hybrid", "lexical", "vector")
RRF_K = 60  # the usual reciprocal-rank-fusion constant: rank 1 and rank 5 differ, but not by orders
# Lexical ranks weigh more than vector ranks: exact error strings, unit names and paths are
# what an admin types, and a small embedding model ranks them poorly (bench/retrieval.py).
LEXICAL_WEIGHT = 1.0
VECTOR_WEIGHT = 0.25
VECTOR_CANDIDATES = 20  # per collection, before fusion


@dataclass(frozen=True)
class Hit:
    id: str
    collection: str
    score: float  # fused RRF score scaled to 0..1 (1.0 = ranked first by both rankings)
    snippet: str
    metadata: dict[str, Any]
    similarity: float | None = None  # cosine similarity of the vectors; None without the embedder
    lexical_rank: int | None = None  # 1-based; None when no query word occurs in the document
    vector_rank: int | None = None


class EmbedderUnavailable(RuntimeError):
    """A vector search was asked for explicitly while the embedding model is down."""


class KnowledgeUnavailable(RuntimeError):
    """The knowledge base could not be opened (ChromaDB); callers go on without it."""


# Words too common in questions and runbooks to tell documents apart.
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "keeps",
        "keep",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "my",
        "our",
        "is",
        "isnt",
        "doesnt",
        "dont",
        "wont",
        "cant",
        "seems",
        "seem",
        "getting",
        "get",
        "got",
        "keeps",
        "happening",
        "happened",
        "something",
        "anything",
    ]
)
_TOKEN = re.compile(r"/?[a-z0-9][a-z0-9_.@:/\-]*[a-z0-9]|[a-z0-9]")
_PARTS = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    # A light suffix strip so "restarting", "restarts" and "restart" meet; no dictionary.
    for suffix in ("ations", "ation", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiousl":
                word = word[:-1]  # swapping -> swapp -> swap
            return word
    return word


def tokens(text: str) -> list[str]:
    """Lexical tokens: whole compound tokens (nginx.service, /var/log) plus their stemmed parts."""
    out: list[str] = []
    for tok in _TOKEN.findall(text.lower()):
        parts = _PARTS.findall(tok)
        if len(parts) > 1:
            out.append(tok)
        out += [_stem(p) for p in parts if p not in STOPWORDS]
    return out


def open_chroma(cfg: KnowledgeConfig) -> ClientAPI:
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if cfg.url:
        u = urlsplit(cfg.url)
        if u.hostname is None:  # the configuration's HttpUrl has a host; this is for a hand-built config
            raise ValueError(f"knowledge.url {cfg.url!r} names no host")
        return chromadb.HttpClient(
            host=u.hostname,
            port=u.port or (443 if u.scheme == "https" else 8000),
            ssl=u.scheme == "https",
            settings=settings,
        )
    if cfg.path is None:  # the configuration fills it in from state_dir
        raise ValueError("knowledge.path is not set")
    Path(cfg.path).mkdir(parents=True, exist_ok=True, mode=0o750)
    return chromadb.PersistentClient(path=cfg.path, settings=settings)


def shipped_runbooks() -> dict[str, str]:
    """name -> markdown text of every runbook in the package."""
    root = resources.files("ai_sysadmin") / "runbooks"
    return {
        p.name.removesuffix(".md"): p.read_text(encoding="utf-8")
        for p in sorted(root.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".md")
    }


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class KnowledgeSearch(Protocol):
    """What the knowledge base's readers need (the review's context, L4's tool and loop): the
    KnowledgeBase here, or the shipped runbooks on a shelf (eval.shelf.RunbookShelf)."""

    async def search(self, text: str, collections: Iterable[str] = COLLECTIONS, k: int = 5) -> list[Hit]: ...


class KnowledgeBase:
    def __init__(self, client: Any, embedder: LLMClient):
        self._client = client
        self._embedder = embedder
        self._cols = {
            name: client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
            for name in COLLECTIONS
        }
        self.last_vector_error: str | None = None  # why the last search ranked lexically only

    @classmethod
    async def open(cls, cfg: KnowledgeConfig, embedder: LLMClient) -> KnowledgeBase:
        client = await asyncio.to_thread(open_chroma, cfg)
        return await asyncio.to_thread(cls, client, embedder)

    async def _embed(self, texts: Sequence[str]) -> list[list[float]]:
        # A few documents per request: each request then fits the role's timeout on a
        # small CPU box, and a slow first index does not fail as one giant request.
        out: list[list[float]] = []
        for i in range(0, len(texts), EMBED_BATCH):
            out += await self._embedder.embed([t[:EMBED_CHARS] for t in texts[i : i + EMBED_BATCH]])
        return out

    async def add(self, collection: str, doc_id: str, text: str, metadata: dict[str, Any] | None = None) -> None:
        """Insert or replace one document."""
        if collection not in self._cols:
            raise ValueError(f"unknown collection {collection!r}; one of {', '.join(COLLECTIONS)}")
        if not text.strip():
            raise ValueError(f"{collection}/{doc_id}: empty text")
        [vector] = await self._embed([text])
        meta = {k: v for k, v in (metadata or {}).items() if v is not None} or None
        await asyncio.to_thread(
            self._cols[collection].upsert,
            ids=[doc_id],
            embeddings=[vector],
            documents=[text],
            metadatas=[meta] if meta else None,
        )

    async def add_incident(
        self, incident_id: int, summary: str, diagnosis: str = "", resolution: str = "", outcome: str = ""
    ) -> None:
        text = "\n".join(
            f"{k}: {v}"
            for k, v in (
                ("Summary", summary),
                ("Diagnosis", diagnosis),
                ("Resolution", resolution),
                ("Outcome", outcome),
            )
            if v
        )
        await self.add("incidents", f"incident-{incident_id}", text, {"incident_id": incident_id, "outcome": outcome})

    async def add_note(
        self, note_id: str, text: str, author: str | None = None, incident_id: int | None = None
    ) -> None:
        await self.add("notes", note_id, text, {"author": author, "incident_id": incident_id})

    async def index_runbooks(self, runbooks: dict[str, str] | None = None) -> tuple[int, int]:
        """Index shipped runbooks; re-embed only changed ones, drop removed ones. (indexed, unchanged)."""
        runbooks = shipped_runbooks() if runbooks is None else runbooks
        col = self._cols["runbooks"]
        existing = await asyncio.to_thread(col.get, include=["metadatas"])
        stored = {
            i: (m or {}).get("content_hash") for i, m in zip(existing["ids"], existing["metadatas"] or [], strict=False)
        }
        changed = {name: text for name, text in runbooks.items() if stored.get(name) != content_hash(text)}
        if changed:
            vectors = await self._embed(list(changed.values()))
            await asyncio.to_thread(
                col.upsert,
                ids=list(changed),
                embeddings=vectors,
                documents=list(changed.values()),
                metadatas=[{"content_hash": content_hash(t), "title": _title(t, n)} for n, t in changed.items()],
            )
        gone = [i for i in stored if i not in runbooks]
        if gone:
            await asyncio.to_thread(col.delete, ids=gone)
        if changed or gone:
            log.info(
                "runbooks: %d (re)indexed, %d unchanged, %d removed",
                len(changed),
                len(runbooks) - len(changed),
                len(gone),
            )
        return len(changed), len(runbooks) - len(changed)

    async def search(
        self, text: str, collections: Iterable[str] = COLLECTIONS, k: int = 5, *, mode: str = "hybrid"
    ) -> list[Hit]:
        """The k best hits over the given collections, best first (see the module doc for the ranking)."""
        names = list(collections)
        for n in names:
            if n not in self._cols:
                raise ValueError(f"unknown collection {n!r}; one of {', '.join(COLLECTIONS)}")
        if mode not in SEARCH_MODES:
            raise ValueError(f"unknown search mode {mode!r}; one of {', '.join(SEARCH_MODES)}")
        if not text.strip():
            raise ValueError("search text is empty")
        docs = await self._documents(names)
        if not docs:
            return []
        lexical = _bm25_ranks(text, docs) if mode != "vector" else {}
        vector: dict[tuple[str, str], tuple[int, float]] = {}
        self.last_vector_error = None
        if mode != "lexical":
            try:
                vector = await self._vector_ranks(text, names)
            except LLMError as exc:
                if mode == "vector":
                    raise EmbedderUnavailable(str(exc)) from exc
                self.last_vector_error = str(exc)
                log.info("knowledge: embedding model unavailable (%s); lexical ranking only", exc)
        w_lex = LEXICAL_WEIGHT if mode != "vector" else 0.0
        w_vec = VECTOR_WEIGHT if vector else 0.0
        best = (w_lex + w_vec) / (RRF_K + 1) or 1.0
        hits: list[Hit] = []
        for key, (doc, meta) in docs.items():
            lr = lexical.get(key)
            vr, sim = vector.get(key, (None, None))
            fused = (w_lex / (RRF_K + lr) if lr else 0.0) + (w_vec / (RRF_K + vr) if vr else 0.0)
            if fused <= 0:
                continue
            hits.append(
                Hit(
                    id=key[1],
                    collection=key[0],
                    score=round(fused / best, 4),
                    snippet=_snippet(doc),
                    metadata=dict(meta or {}),
                    similarity=sim,
                    lexical_rank=lr,
                    vector_rank=vr,
                )
            )
        hits.sort(key=lambda h: (-h.score, h.lexical_rank or 10**6, h.vector_rank or 10**6))
        return hits[:k]

    async def _documents(self, names: list[str]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
        out: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for name in names:
            res = await asyncio.to_thread(self._cols[name].get, include=["documents", "metadatas"])
            for i, doc, meta in zip(
                res["ids"], res["documents"] or [], res["metadatas"] or [{}] * len(res["ids"]), strict=False
            ):
                out[(name, i)] = (doc or "", dict(meta or {}))
        return out

    async def _vector_ranks(self, text: str, names: list[str]) -> dict[tuple[str, str], tuple[int, float]]:
        [vector] = await self._embed([text])
        scored: list[tuple[float, tuple[str, str]]] = []
        for name in names:
            col = self._cols[name]
            n = min(VECTOR_CANDIDATES, await asyncio.to_thread(col.count))
            if n == 0:
                continue
            res = await asyncio.to_thread(col.query, query_embeddings=[vector], n_results=n, include=["distances"])
            scored += [(1.0 - float(d), (name, i)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
        scored.sort(key=lambda x: -x[0])
        return {key: (rank, round(sim, 4)) for rank, (sim, key) in enumerate(scored, 1)}

    async def count(self, collection: str) -> int:
        return await asyncio.to_thread(self._cols[collection].count)


def _bm25_ranks(text: str, docs: dict[tuple[str, str], tuple[str, dict[str, Any]]]) -> dict[tuple[str, str], int]:
    """1-based BM25 ranks of the documents that share at least one query token."""
    from rank_bm25 import BM25Okapi

    query = tokens(text)
    if not query:
        return {}
    keys = list(docs)
    corpus = [tokens(_lexical_text(docs[key][0], docs[key][1])) or ["\x00"] for key in keys]
    scores = BM25Okapi(corpus).get_scores(query)
    qset = set(query)
    matched = [(float(sc), key) for sc, key, toks in zip(scores, keys, corpus, strict=True) if qset.intersection(toks)]
    matched.sort(key=lambda x: -x[0])
    return {key: rank for rank, (_, key) in enumerate(matched, 1)}


def _lexical_text(doc: str, meta: dict[str, Any]) -> str:
    # The title says what a document is about: count it twice.
    title = str(meta.get("title") or "")
    return f"{title}\n{title}\n{doc}" if title else doc


def _title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def _snippet(doc: str) -> str:
    doc = " ".join(doc.split())
    return doc if len(doc) <= SNIPPET_CHARS else doc[: SNIPPET_CHARS - 3] + "..."
