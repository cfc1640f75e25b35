"""`ai-sysadmin incidents [list|show ID]`: what the service found, from PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from ai_sysadmin.commands import host_arg, hosts_text
from ai_sysadmin.commands.replay import positive_int
from ai_sysadmin.store.incidents import STATUSES, IncidentStore


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("incidents", help="list incidents or show one")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list")
    p.add_argument("id", nargs="?", type=int, help="incident id (for show)")
    p.add_argument("--status", choices=STATUSES, help="only incidents in this status (list)")
    p.add_argument("--limit", type=positive_int, default=50, help="at most this many incidents (list)")
    p.add_argument(
        "--host", type=host_arg, help="only this host's incidents, and the fleet incidents that reached it (list)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    if args.action == "show" and args.id is None:
        print("ai-sysadmin incidents show: an incident ID is required", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, load()))


async def _run(args: argparse.Namespace, cfg) -> int:
    import psycopg
    from psycopg_pool import PoolTimeout

    from ai_sysadmin.compose.admin import admin_pool
    from ai_sysadmin.store.db import DatabaseUnavailable, SchemaNotMigrated, connect_kwargs, require_schema

    # One plain connection first: its error says why (the pool would only say "timed out"),
    # and it tells a database that was never migrated from one that is down.
    try:
        probe = await psycopg.AsyncConnection.connect(cfg.database.conninfo(), **connect_kwargs(cfg.database, 5))
    except psycopg.OperationalError as exc:
        print(f"ai-sysadmin incidents: {DatabaseUnavailable.from_error(exc)}", file=sys.stderr)
        return 1
    try:
        async with probe:
            await require_schema(probe)
    except SchemaNotMigrated as exc:
        print(f"ai-sysadmin incidents: {exc}", file=sys.stderr)
        return 1
    try:
        async with admin_pool(cfg) as pool:
            return await _show(args, pool)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        print(f"ai-sysadmin incidents: {DatabaseUnavailable.from_error(exc)}", file=sys.stderr)
        return 1


async def _show(args: argparse.Namespace, pool) -> int:
    store = IncidentStore(pool)
    if args.action == "list":
        rows = await store.list(args.status, args.limit, host=args.host)
        if args.json:
            print(json.dumps(rows, default=str, indent=2))
        elif not rows:
            print("no incidents")
        for r in [] if args.json else rows:
            print(
                f"#{r['id']:<5} {r['status']:<12} {r['severity']:<8} {r['category']:<13} "
                f"{r['updated_at']:%Y-%m-%d %H:%M}  {hosts_text(r)}  {r['title']}  ({r['triggers']} trigger(s))"
            )
        return 0
    inc = await store.show(args.id)
    if inc is not None:
        inc["switch"] = await _switch_of(pool, args.id)
    if inc is None:
        print(f"no incident {args.id}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(inc, default=str, indent=2))
        return 0
    print(
        f"#{inc['id']} {inc['title']}\n  status {inc['status']}, {inc['severity']}, {inc['category']}"
        f"{', unit ' + inc['unit'] if inc['unit'] else ''}, opened {inc['opened_at']:%Y-%m-%d %H:%M}"
    )
    print(f"  host {hosts_text({'hosts': [h['host'] for h in inc['hosts']], 'host': inc['host']})}")
    for h in inc["hosts"] if len(inc["hosts"]) > 1 else ():
        print(f"    {h['host']}: first seen {h['first_seen']:%Y-%m-%d %H:%M:%S}")
    for key in ("summary", "diagnosis", "resolution", "outcome"):
        if inc[key]:
            print(f"  {key}: {inc[key]}")
    for t in inc["triggers"]:
        print(f"  trigger {t['id'][:12]} {t['host']} {t['severity']} x{t['count']} {t['source']}: {t['template']}")
    for f in inc["findings"]:
        print(f"  finding {f['id']} ({f['layer']}, {f['severity']}): {f['title']}")
        if f.get("advice"):  # a declarative suggestion for configuration.nix; never applied by the service
            print("    suggested NixOS configuration:")
            for line in str(f["advice"]).splitlines():
                print(f"      {line}")
    for line in switch_lines(inc.get("switch")):
        print(line)
    for a in inc["actions"]:
        print(f"  action {a['id']} {a['action']} on {a['host']} [{a['status']}] risk {a['risk']}")
    return 0


async def _switch_of(pool, incident_id: int):
    """The switch the incident is attributed to, with the proof (store/switches.py), or None."""
    from ai_sysadmin.store.switches import attribution

    try:
        async with pool.connection() as conn:
            return await attribution(conn, incident_id)
    except Exception:  # a schema before migration 7: no attribution to show
        return None


def switch_lines(sw) -> list[str]:
    if not sw:
        return []
    pf = sw.get("preflight") or {}
    out = [
        f"  after switch generation {sw['from_generation'] or '?'} -> {sw['to_generation'] or '?'} "
        f"at {sw['switched_at']:%Y-%m-%d %H:%M:%S} (preflight {sw.get('verdict') or 'not judged'}): "
        f"{', '.join(sw['units'])} failed {(sw['failed_at'] - sw['switched_at']).total_seconds():.1f}s after it",
        f"    system {sw['from_path']} -> {sw['to_path']}",
    ]
    plan = {u["unit"]: u for u in pf.get("units") or []}
    for u in sw["units"]:
        p = plan.get(u, {})
        out.append(f"    unit change: {u} {p.get('action', '?')} ({p.get('reason', '')})")
    diff = pf.get("closure")
    if diff is None:
        out.append("    closure diff: unavailable")
    else:
        for c in diff.get("changes") or []:
            size = c.get("size_delta_bytes")
            out.append(
                f"    closure: {c['package']} {', '.join(c['from']) or '-'} -> {', '.join(c['to']) or '-'}"
                + ("" if size is None else f" ({size:+d} B)")
            )
    return out
