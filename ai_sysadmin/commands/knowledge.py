"""`ai-sysadmin knowledge search "TEXT"` and `knowledge note "TEXT" [--incident ID]`.

Search ranks by words and by meaning (store.knowledge); with the embedding model down
it still answers from the lexical ranking and says so.  A note is embedded into the
`notes` collection (so it needs the embedding model) and may name the incident it is about.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from dataclasses import asdict

from ai_sysadmin.store.knowledge import COLLECTIONS

MAX_NOTE = 8000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("knowledge", help="search the knowledge base, add operator notes")
    ks = p.add_subparsers(dest="knowledge_command", metavar="ACTION", required=True)
    s = ks.add_parser("search", help="scored snippets for TEXT")
    s.add_argument("text")
    s.add_argument("-k", type=int, default=5, help="how many hits (default 5)")
    s.add_argument(
        "--collection", action="append", choices=COLLECTIONS, help="search only this collection (repeatable)"
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=run)
    n = ks.add_parser("note", help="add an operator note (optionally about an incident)")
    n.add_argument("text")
    n.add_argument("--incident", type=int, metavar="ID", help="the incident the note is about")
    n.add_argument("--json", action="store_true", help="machine-readable output")
    n.set_defaults(func=run_note)


def _need_embed(cfg, what: str) -> bool:
    if cfg.roles.embed is None or not cfg.roles.embed.enable:
        print(
            f"ai-sysadmin: knowledge {what} needs an embedding model: configure roles.embed "
            "(a llama-server started with --embeddings)",
            file=sys.stderr,
        )
        return False
    return True


def run(args: argparse.Namespace, load) -> int:
    if not args.text.strip():
        print("ai-sysadmin knowledge search: the search text is empty; give words to look for", file=sys.stderr)
        return 2
    if args.k < 1:
        print("ai-sysadmin knowledge search: -k must be at least 1", file=sys.stderr)
        return 2
    cfg = load()
    if not _need_embed(cfg, "search"):
        return 2
    return asyncio.run(_search(args, cfg))


async def _search(args: argparse.Namespace, cfg) -> int:
    from ai_sysadmin.llm import LLMClient, LLMError
    from ai_sysadmin.store.knowledge import KnowledgeBase

    async with LLMClient(cfg.roles.embed) as embedder:
        try:
            kb = await KnowledgeBase.open(cfg.knowledge, embedder)
        except Exception as exc:
            print(
                f"ai-sysadmin: cannot open the knowledge base at {cfg.knowledge.url or cfg.knowledge.path} "
                f"({str(exc)[:200]}); run `ai-sysadmin doctor`",
                file=sys.stderr,
            )
            return 1
        note = None
        collections = args.collection or COLLECTIONS
        try:
            if "runbooks" in collections:
                await kb.index_runbooks()  # cheap when unchanged; a fresh install still finds runbooks
        except LLMError as exc:
            note = f"embedding model unavailable ({exc}); runbooks not (re)indexed, lexical ranking only"
        hits = await kb.search(args.text, collections, k=args.k)
        if kb.last_vector_error and note is None:
            note = f"embedding model unavailable ({kb.last_vector_error}); lexical ranking only"
    if note:
        print(f"ai-sysadmin: {note}; run `ai-sysadmin doctor`", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(h) for h in hits], indent=2, default=str))
        return 0
    if not hits:
        print("no matches")
    for h in hits:
        ranks = f"words #{h.lexical_rank or '-'}, meaning #{h.vector_rank or '-'}"
        print(f"{h.score:.3f}  {h.collection}/{h.id}  ({ranks})\n       {h.snippet}")
    return 0


def run_note(args: argparse.Namespace, load) -> int:
    text = args.text.strip()
    if not text:
        print("ai-sysadmin knowledge note: the note is empty; write the note in quotes", file=sys.stderr)
        return 2
    if len(text) > MAX_NOTE:
        print(f"ai-sysadmin knowledge note: the note has {len(text)} characters; at most {MAX_NOTE}", file=sys.stderr)
        return 2
    cfg = load()
    if not _need_embed(cfg, "note"):
        return 2
    return asyncio.run(_note(args, cfg, text))


async def _note(args: argparse.Namespace, cfg, text: str) -> int:
    from ai_sysadmin.llm import LLMClient, LLMError
    from ai_sysadmin.store.knowledge import KnowledgeBase

    note_id = f"note-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
    author = getpass.getuser()
    async with LLMClient(cfg.roles.embed) as embedder:
        try:
            kb = await KnowledgeBase.open(cfg.knowledge, embedder)
            await kb.add_note(note_id, text, author, incident_id=args.incident)
        except LLMError as exc:
            print(
                f"ai-sysadmin: the note was not saved: the embedding model failed ({exc}); "
                "run `ai-sysadmin doctor` and try again",
                file=sys.stderr,
            )
            return 1
        except Exception as exc:
            print(f"ai-sysadmin: the note was not saved: {str(exc)[:200]}; run `ai-sysadmin doctor`", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"id": f"notes/{note_id}", "author": author, "incident": args.incident}))
    else:
        print(f"saved notes/{note_id}" + (f" (incident {args.incident})" if args.incident else ""))
    return 0
