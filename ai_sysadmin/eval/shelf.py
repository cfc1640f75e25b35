"""RunbookShelf: knowledge_search over the shipped runbooks, lexical only, for `ai-sysadmin eval`.

The service's knowledge base needs ChromaDB and the embedding model and holds this
host's past incidents and notes; an eval run must not read them (they would leak the
machine's history into a scenario) and should not need them.  The shelf ranks the
package's runbooks with the knowledge base's own BM25 ranking (store.knowledge), so
the investigation can cite `runbooks/<name>` as it would on a host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ai_sysadmin.store.knowledge import COLLECTIONS, Hit, _bm25_ranks, _snippet, _title, shipped_runbooks


class RunbookShelf:
    def __init__(self, runbooks: dict[str, str] | None = None):
        books = runbooks if runbooks is not None else shipped_runbooks()
        self.docs = {("runbooks", name): (text, {"title": _title(text, name)}) for name, text in books.items()}
        self.returned: set[str] = set()  # every id a search handed out (grounding: what the model was shown)

    async def search(self, text: str, collections: Iterable[str] = COLLECTIONS, k: int = 5, **_: Any) -> list[Hit]:
        names = list(collections)
        for n in names:
            if n not in COLLECTIONS:
                raise ValueError(f"unknown collection {n!r}; one of {', '.join(COLLECTIONS)}")
        if not text.strip():
            raise ValueError("search text is empty")
        docs = {key: v for key, v in self.docs.items() if key[0] in names}
        ranks = _bm25_ranks(text, docs) if docs else {}
        hits = [
            Hit(
                id=key[1],
                collection=key[0],
                score=round(1.0 / rank, 4),
                snippet=_snippet(docs[key][0]),
                metadata=dict(docs[key][1]),
                lexical_rank=rank,
            )
            for key, rank in sorted(ranks.items(), key=lambda kv: kv[1])
        ][:k]
        self.returned |= {f"{h.collection}/{h.id}" for h in hits} | {h.id for h in hits}
        return hits
