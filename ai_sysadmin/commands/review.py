"""`ai-sysadmin review --now`: one review against the live database, printing the result.

It runs in this process (not in the service): incidents are taken back from the
database, the context is built from the stored triggers of the last hour, the review
model is asked, and proposals go through the real ActionService (recorded, under the
configured autonomy level), exactly as a scheduled review would.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ai_sysadmin.commands import db_command


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="run one L3 review now against the live database and print it")
    p.add_argument("--now", action="store_true", required=True, help="run one review now")
    p.add_argument("--no-model", action="store_true", help="deterministic candidates only")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=db_command(_run))


async def _run(args: argparse.Namespace, cfg: Any) -> int:
    import psycopg

    from ai_sysadmin.store.lifecycle import open_store

    try:
        store = await open_store(cfg, pool_timeout=5.0)
    except (psycopg.OperationalError, OSError) as exc:
        print(f"ai-sysadmin review: cannot reach PostgreSQL ({exc}); run `ai-sysadmin doctor`", file=sys.stderr)
        return 1
    try:
        if not store.writer.reachable:
            print("ai-sysadmin review: PostgreSQL is unreachable; run `ai-sysadmin doctor`", file=sys.stderr)
            return 1
        res = await review_now(cfg, store, use_model=not args.no_model)
    finally:
        await store.close()
    if args.format == "json":
        print(json.dumps(res.to_json(), default=str, indent=2))
    else:
        print(render(res))
    return 0 if res.outcome != "failed" else 1


async def review_now(cfg: Any, store: Any, *, use_model: bool = True) -> Any:
    from ai_sysadmin.actions.proposals import ActionService
    from ai_sysadmin.incidents.tracker import trigger_from_row
    from ai_sysadmin.review.stack import ReviewStack
    from ai_sysadmin.store.triggers import recent as recent_triggers

    client = None
    if use_model and cfg.roles.review.enable:
        from ai_sysadmin.llm import LLMClient

        client = LLMClient(cfg.roles.review, on_call=store.llm_calls)
    stack = ReviewStack.build(cfg, store, ActionService(cfg, store.pool), client=client)
    try:
        await stack.incidents.start()
        await stack.incidents.process()
        async with store.pool.connection() as conn:
            rows = await recent_triggers(conn, cfg.review.max_triggers)
        stack.review.window.add(
            [trigger_from_row(r) for r in rows],
            {r["id"]: r["incident_id"] for r in rows if r["incident_id"] is not None},
        )
        return await stack.review.review_once("manual")
    finally:
        await stack.aclose()
        if client is not None:
            await client.aclose()


def render(res: Any) -> str:
    out = [f"review #{res.id} ({res.reason}): {res.outcome}{' -- ' + res.error if res.error else ''}"]
    if res.status:
        out.append(f"status: {res.status}")
    share = f", {res.cached_share:.0%} cached" if res.cached_share is not None else ""
    out.append(
        f"context {res.context_tokens} tokens"
        f"{' (compacted: ' + ', '.join(res.compaction) + ')' if res.compaction else ''}"
        f"; prompt {res.prompt_tokens}{share}, completion {res.completion_tokens}"
        f"{f', {res.latency_s:.1f}s' if res.latency_s else ''}"
    )
    for f in res.findings:
        inc = f"#{f['incident']}" if f.get("incident") is not None else "-"
        out.append(f"finding {inc} [{f['layer']}, {f['severity']} {f['category']}] {f['summary']}")
        for a in f.get("advice") or []:
            out.append(f"    advice (NixOS, not applied): {a}")
    for p in res.proposals:
        out.append(
            f"proposal {p['action']} {json.dumps(p['params'], sort_keys=True)} risk {p['risk']} "
            f"({p['source']}) -> {p['decision']}: {p['reason']}"
        )
    if not res.findings and not res.proposals:
        out.append("nothing found, nothing proposed")
    return "\n".join(out)
