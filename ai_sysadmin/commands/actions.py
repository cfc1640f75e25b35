"""`ai-sysadmin actions catalog|list|show|approve|reject|propose|clear-breaker|policy`.

approve signs with the approval key (`actions.approval_key_file`, or `--key-file`):
root and the API have it, the orchestrator does not.  The actor is the local user.
It signs the digest that `show` printed (`--digest`), so what runs is what was shown;
clear-breaker is signed the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import sys
from typing import Any

from ai_sysadmin.commands import host_arg

STATUSES = (
    "queued",
    "approved",
    "executing",
    "verified",
    "failed",
    "interrupted",
    "refused",
    "rejected",
    "recorded",
    "expired",
    "dry-run",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("actions", help="the action catalog, queued actions, approvals")
    s = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    c = s.add_parser("catalog", help="list the catalog (id, risk, parameters, verification)")
    c.add_argument("--format", choices=("text", "json"), default="text")
    ls = s.add_parser("list", help="recent actions")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.add_argument("--host", type=host_arg, help="only the actions that run on this host")
    sh = s.add_parser("show", help="one action with its steps, approvals, output and verification")
    sh.add_argument("id", type=int)
    sh.add_argument("--format", choices=("text", "json"), default="text")
    for verb in ("approve", "reject"):
        a = s.add_parser(verb, help=f"{verb} a queued action (recorded with your user name)")
        a.add_argument("id", type=int)
        a.add_argument("--reason", required=True)
        if verb == "approve":
            a.add_argument("--digest", help="the digest `ai-sysadmin actions show ID` printed: what you approve")
            a.add_argument("--key-file", help="approval key (default: actions.approval_key_file)")
    pr = s.add_parser("propose", help="propose a catalog action by hand (goes through the policy)")
    pr.add_argument("action")
    pr.add_argument("--params", default="{}", help='JSON object, e.g. \'{"unit": "nginx.service"}\'')
    pr.add_argument("--reason", required=True)
    pr.add_argument("--incident", type=int)
    cb = s.add_parser("clear-breaker", help="let automatic actions touch TARGET again")
    cb.add_argument("target")
    cb.add_argument("--reason", required=True)
    cb.add_argument("--key-file", help="approval key (default: actions.approval_key_file)")
    pol = s.add_parser("policy", help="pause, breakers, cool-downs and rate counters")
    pol.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def local_actor() -> str:
    """The person at the terminal: approving needs root (the key is root's), so under
    sudo the invoking user is what the audit trail should name, not "root"."""
    name = pwd.getpwuid(os.getuid()).pw_name
    sudo_user = os.environ.get("SUDO_USER", "")
    if os.getuid() == 0 and sudo_user and sudo_user != "root" and sudo_user.replace("-", "").replace("_", "").isalnum():
        return f"{sudo_user} (sudo)"
    return name


def run(args: argparse.Namespace, load) -> int:
    if args.verb == "catalog":
        return _catalog(args)
    return asyncio.run(_run(args, load()))


def _catalog(args: argparse.Namespace) -> int:
    from ai_sysadmin.actions.catalog import load_catalog

    items = load_catalog().describe()
    if args.format == "json":
        print(json.dumps(items, indent=2))
        return 0
    for a in items:
        params = (
            ", ".join(
                f"{k}" + ("*" if k in a["parameters"].get("required", []) else "")
                for k in a["parameters"].get("properties", {})
            )
            or "-"
        )
        print(f"{a['id']:<20} {a['risk']:<7} params: {params}")
        print(f"{'':<20} {a['description']}")
        print(f"{'':<20} verifies: {a['verification']}")
    return 0


async def _run(args: argparse.Namespace, cfg) -> int:
    import psycopg

    from ai_sysadmin.actions import approvals
    from ai_sysadmin.compose.admin import admin_pool

    try:
        async with admin_pool(cfg) as pool:
            return await _verb(args, cfg, pool)
    except psycopg.OperationalError as exc:
        print(f"ai-sysadmin: cannot reach PostgreSQL ({str(exc).strip()}); run `ai-sysadmin doctor`", file=sys.stderr)
        return 1
    except approvals.ApprovalError as exc:
        print(f"ai-sysadmin actions {args.verb}: {exc}", file=sys.stderr)
        return 1
    except psycopg.errors.UndefinedTable:
        print(
            "ai-sysadmin: the database schema is older than this command; start the service once "
            "(`ai-sysadmin run`) so it migrates",
            file=sys.stderr,
        )
        return 1
    except psycopg.errors.InsufficientPrivilege as exc:
        print(f"ai-sysadmin: this database role may not do that ({str(exc).strip()})", file=sys.stderr)
        return 1


async def _verb(args: argparse.Namespace, cfg, pool) -> int:
    from ai_sysadmin.actions import approvals, signing

    if args.verb == "list":
        rows = await approvals.list_actions(pool, args.status, args.limit, args.host)
        if args.format == "json":
            print(json.dumps(rows, default=str, indent=2))
            return 0
        if not rows:
            print("no actions")
        for r in rows:
            print(
                f"#{r['id']:<5} {r['status']:<11} {r['risk'] or '-':<6} {r['host']:<12} {r['action']:<20} "
                f"{json.dumps(r['params'])[:60]:<40} {r['decision_reason'][:70]}"
                + (f"  CONTRADICTS: {r['contradicts'][:80]}" if r.get("contradicts") else "")
            )
        return 0
    if args.verb == "show":
        row = await approvals.show_action(pool, args.id)
        if args.format == "json":
            print(json.dumps(row, default=str, indent=2))
            return 0
        _print_action(row)
        return 0
    if args.verb == "approve":
        try:
            key = signing.load_key(cfg, override=args.key_file)
        except signing.KeyUnavailable as exc:
            print(f"ai-sysadmin actions approve: {exc}", file=sys.stderr)
            return 1
        out = await approvals.approve(
            pool,
            args.id,
            local_actor(),
            args.reason,
            digest=args.digest,
            key=key,
            ttl_seconds=cfg.actions.approval_ttl_seconds,
        )
        print(f"action {args.id} approved by {out['approver']}, valid until {out['expires_at']}")
        print(
            f"  signed: {out['action']} {json.dumps(out['params'])} risk {out['risk']} target {out['target']} "
            f"incident {out['incident_id'] or '-'} (digest {out['digest']})"
        )
        return 0
    if args.verb == "reject":
        await approvals.reject(pool, args.id, local_actor(), args.reason)
        print(f"action {args.id} rejected")
        return 0
    if args.verb == "clear-breaker":
        try:
            key = signing.load_key(cfg, override=args.key_file)
        except signing.KeyUnavailable as exc:
            print(f"ai-sysadmin actions clear-breaker: {exc}", file=sys.stderr)
            return 1
        await approvals.clear_breaker(pool, args.target, local_actor(), args.reason, key=key)
        print(f"breaker on {args.target} cleared")
        return 0
    if args.verb == "policy":
        from ai_sysadmin.actions.proposals import ActionService

        state = await ActionService(cfg, pool).policy_state()
        if args.format == "json":
            print(json.dumps(state, indent=2, default=str))
        else:
            print(
                f"autonomy {state['autonomy_level']}; paused until {state['paused_until'] or '-'}; "
                f"{state['queued']} queued"
            )
            for b in state["breakers"]:
                print(f"breaker {b['target']}: since {b['tripped_at']} ({b['reason']})")
            for t in state["targets"]:
                print(
                    f"target {t['target']}: {t['actions_in_window']}/{t['limit']} in window"
                    f"{', cooling down until ' + t['cooling_down_until'] if t['cooling_down_until'] else ''}"
                )
        return 0
    if args.verb == "propose":
        from ai_sysadmin.actions.proposals import ActionService
        from ai_sysadmin.actions.types import Proposal

        try:
            params = json.loads(args.params)
        except json.JSONDecodeError as exc:
            print(
                f"ai-sysadmin actions propose: --params is not JSON ({exc.msg} at column {exc.colno})", file=sys.stderr
            )
            return 2
        outcome = await ActionService(cfg, pool).propose(
            Proposal(
                action=args.action,
                params=params,
                reason=args.reason,
                source="cli",
                incident_id=args.incident,
                actor=local_actor(),
            )
        )
        print(json.dumps(outcome.to_json()))
        return 0 if outcome.decision != "refuse" else 1
    raise AssertionError(args.verb)


def _print_action(r: dict[str, Any]) -> None:
    print(f"#{r['id']} {r['action']} {json.dumps(r['params'])}  [{r['status']}]  risk {r['risk'] or '-'}")
    print(f"  host {r.get('host') or '-'}, target {r.get('target') or '-'}, incident {r.get('incident_id') or '-'}")
    print(
        f"  digest {r['digest']}  (approve: ai-sysadmin actions approve {r['id']} --digest {r['digest']} --reason TEXT)"
    )
    print(f"  decision {r['decision']}: {r['decision_reason']}")
    if r.get("contradicts"):
        print(f"  contradicts the incident's evidence: {r['contradicts']}")
    if r.get("proposal_reason"):
        print(f"  proposed by {r.get('proposed_by') or r.get('source')}: {r['proposal_reason']}")
    for e in r.get("errors") or []:
        print(f"  error {e['field']}: {e['reason']}")
    for a in r["approvals"]:
        print(
            f"  approval ({a['kind']}{', signed' if a['signed'] else ''}) by {a['approver']} at "
            f"{a['approved_at']:%Y-%m-%d %H:%M:%S}, expires {a['expires_at']:%Y-%m-%d %H:%M:%S}: {a['reason']}"
        )
    for s in r["steps"]:
        print(
            f"  {s['at']:%Y-%m-%d %H:%M:%S} {s['from_status'] or '-'} -> {s['to_status']} by {s['actor']}: "
            f"{s['reason']}"
        )
    res = r.get("result") or {}
    for step in res.get("steps", []):
        print(f"  ran {step['argv']}: exit {step['exit_status']}{' (' + step['error'] + ')' if step['error'] else ''}")
        for stream in ("stdout", "stderr"):
            if step.get(stream):
                print(f"    {stream}: {step[stream].strip()[:500]}")
    if res.get("mode") == "dry-run":
        for argv in res.get("argv", []):
            print(f"  DRY RUN, not run: {argv}")
    v = r.get("verification")
    if v:
        print(
            f"  verification {'passed' if v['passed'] else 'FAILED'}"
            f"{' (after interruption)' if v.get('interrupted') else ''}"
        )
        for c in v["checks"]:
            print(f"    [{'ok' if c['passed'] else 'FAIL'}] {c['check']}")
