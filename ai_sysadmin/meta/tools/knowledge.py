"""knowledge_search: runbooks, past incidents and operator notes (hybrid lexical + vector ranking)."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.meta.tools import ToolContext
from ai_sysadmin.meta.tools.base import Tool, ToolError, ToolOutput, obj
from ai_sysadmin.store.knowledge import KnowledgeUnavailable

COLLECTIONS = ("incidents", "runbooks", "notes")


def tools(ctx: ToolContext) -> list[Tool]:
    async def handler(args: dict[str, Any]) -> ToolOutput:
        if ctx.kb is None:
            raise ToolError("no knowledge base configured (roles.embed)")
        cols = [args["collection"]] if "collection" in args else list(COLLECTIONS)
        try:
            hits = await ctx.kb.search(args["text"], cols, k=args.get("k", 4))
        except ValueError as exc:
            raise ToolError(f"invalid argument text: {exc}") from None
        except KnowledgeUnavailable as exc:
            raise ToolError(f"the knowledge base is unavailable ({exc}); use the other tools") from None
        if not hits:
            return ToolOutput("no matches", {"hits": 0}, "0 hits")
        ids = [f"{h.collection}/{h.id}" for h in hits]
        text = "\n".join(f"{i} (score {h.score:.3f}): {h.snippet}" for i, h in zip(ids, hits, strict=True))
        return ToolOutput(
            text,
            {"hits": len(hits), "evidence_ids": {"knowledge": ids + [h.id for h in hits]}},
            f"{len(hits)} hits, best {ids[0]}",
        )

    params = obj(
        {
            "text": {"type": "string", "minLength": 1, "maxLength": 300, "pattern": r"\S"},
            "collection": {"type": "string", "enum": list(COLLECTIONS)},
            "k": {"type": "integer", "minimum": 1, "maximum": 8},
        },
        ("text",),
    )
    return [
        Tool(
            "knowledge_search",
            "Search runbooks, past incidents and operator notes; cite results by id "
            "(runbooks/disk-full, incidents/incident-3).",
            params,
            handler,
        )
    ]
