"""`ai-sysadmin knowledge search "TEXT"`: search incidents, runbooks and notes by meaning."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict

from ai_sysadmin.store.knowledge import COLLECTIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("knowledge", help="search the knowledge base")
    ks = p.add_subparsers(dest="knowledge_command", metavar="ACTION", required=True)
    s = ks.add_parser("search", help="scored snippets for TEXT")
    s.add_argument("text")
    s.add_argument("-k", type=int, default=5, help="how many hits (default 5)")
    s.add_argument("--collection", action="append", choices=COLLECTIONS,
                   help="search only this collection (repeatable)")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    cfg = load()
    if cfg.roles.embed is None or not cfg.roles.embed.enable:
        print("ai-sysadmin: knowledge search needs an embedding model: configure roles.embed "
              "(a llama-server started with --embeddings)", file=sys.stderr)
        return 2
    return asyncio.run(_search(args, cfg))


async def _search(args: argparse.Namespace, cfg) -> int:
    from ai_sysadmin.llm import LLMClient, LLMError
    from ai_sysadmin.store.knowledge import KnowledgeBase

    async with LLMClient(cfg.roles.embed) as embedder:
        kb = await KnowledgeBase.open(cfg.knowledge, embedder)
        try:
            await kb.index_runbooks()  # cheap when unchanged; a fresh install still finds runbooks
            hits = await kb.search(args.text, args.collection or COLLECTIONS, k=args.k)
        except LLMError as exc:
            print(f"ai-sysadmin: embedding model failed: {exc}; run `ai-sysadmin doctor`", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps([asdict(h) for h in hits], indent=2, default=str))
    elif not hits:
        print("no matches (the knowledge base is empty)")
    for h in [] if args.json else hits:
        print(f"{h.score:.3f}  {h.collection}/{h.id}\n       {h.snippet}")
    return 0
