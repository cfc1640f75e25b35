"""`ai-sysadmin status`: layers and their health, models, database, last review, open
incidents (with NixOS advice), pending approvals, degraded parts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ai_sysadmin.commands import db_command, host_arg, hosts_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="health of the layers, models and database; open incidents; last review")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument(
        "--host", type=host_arg, help="a fleet's hub: only this host's triggers, metrics, incidents and approvals"
    )
    p.set_defaults(func=db_command(_run))


async def _run(args: argparse.Namespace, cfg: Any) -> int:
    from ai_sysadmin.status import gather_status
    from ai_sysadmin.store.db import make_pool

    pool = make_pool(cfg.database, max_size=1, timeout=5)
    await pool.open(wait=False)
    try:
        st = await gather_status(cfg, pool, host=args.host)
    finally:
        await pool.close()
    if args.format == "json":
        print(json.dumps(st, default=str, indent=2))
    else:
        print(render(st))
    return 0 if st["database"]["reachable"] else 1


def render(st: dict[str, Any]) -> str:
    out = [
        f"ai-sysadmin status at {st['at']:%Y-%m-%d %H:%M:%S} UTC, autonomy {st['autonomy_level']}"
        + (f", host {st['host']}" if st.get("host") else "")
    ]
    db = st["database"]
    out.append(
        "database: "
        + (f"ok (schema v{db['schema_version']})" if db["reachable"] else f"UNREACHABLE ({db.get('error', '')})")
    )
    for name, m in st["models"].items():
        out.append(
            f"model {name:<8} {m['status']:<12} {m['model']} at {m['url']}"
            f"{'  ' + m['detail'] if m['detail'] and m['status'] != 'ok' else ''}"
        )
    lay = st["layers"]
    if lay:
        l1 = lay["l1"]
        out.append(
            f"L1 triggers: last checkpoint {_ago(l1['age_s'])}, {l1['triggers_last_hour']} trigger(s) in the last hour"
        )
        out.append(f"metrics: last sample {_ago(lay['metrics']['age_s'])}")
    r = st.get("last_review")
    if r:
        share = f", {r['cached_share']:.0%} of the prompt cached" if r.get("cached_share") is not None else ""
        out.append(
            f"last review: #{r['id']} {r['started_at']:%Y-%m-%d %H:%M:%S} ({r['reason']}) {r['outcome']}"
            f"{' status ' + r['status'] if r.get('status') else ''}{' -- ' + r['error'] if r.get('error') else ''}"
            f"; {r['prompt_tokens']} prompt tokens{share}"
        )
    else:
        out.append("last review: none yet")
    out += render_switch(st.get("last_switch"))
    pend = st.get("pending_approvals")
    out.append(f"pending approvals: {pend if pend is not None else 'unknown'}")
    incs = st.get("open_incidents") or []
    out.append(f"open incidents: {len(incs)}")
    for i in incs:
        conf = " (low confidence)" if i.get("confidence") == "low" else ""
        out.append(
            f"  #{i['id']:<5} {i['status']:<12} {i['severity']:<8} {i['category']:<13} {hosts_text(i)} "
            f"{i['title']}{conf}"
        )
        for line in (i.get("advice") or "").splitlines():
            out.append(f"         advice (NixOS, not applied): {line}")
    out.append("degraded: " + ("none" if not st["degraded"] else ""))
    out += [f"  - {d}" for d in st["degraded"]]
    return "\n".join(out)


def render_switch(sw: dict[str, Any] | None) -> list[str]:
    if not sw:
        return ["last switch: none noticed"]
    verdict = sw.get("verdict") or "not judged"
    reasons = "; ".join(sw.get("reasons") or [])
    out = [
        f"last switch: generation {_gen(sw['from_generation'])} -> {_gen(sw['to_generation'])} at "
        f"{sw['switched_at']:%Y-%m-%d %H:%M:%S}, preflight {verdict}{' (' + reasons + ')' if reasons else ''}"
    ]
    failed = sw.get("failed_after") or []
    if not failed:
        out.append(f"  nothing failed after it among the {len(sw.get('touched') or [])} unit(s) it touched")
    for f in failed:
        out.append(f"  failed after it: {', '.join(f['units'])} -> incident #{f['incident_id']} ({f['status']})")
    return out


def _gen(n: int | None) -> str:
    return "?" if n is None else str(n)


def _ago(age: float | None) -> str:
    if age is None:
        return "never"
    return f"{age:.0f}s ago" if age < 120 else f"{age / 60:.0f} min ago"
