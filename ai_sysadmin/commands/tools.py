"""`ai-sysadmin tools list [--format json]`: the L4 tool catalog (read-only tools and propose_action)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tools", help="the investigation tools the meta model may call")
    ts = p.add_subparsers(dest="tools_command", metavar="ACTION", required=True)
    lst = ts.add_parser("list", help="print the tool catalog")
    lst.add_argument("--format", choices=("text", "json"), default="text")
    lst.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    from ai_sysadmin.meta.tools import build_toolset

    cfg = load()
    tools = build_toolset(cfg)  # no database, no knowledge base: the catalog only
    catalog = tools.catalog()
    if args.format == "json":
        print(
            json.dumps({"tools": catalog, "output_budget_chars": tools.max_chars, "timeout_s": tools.timeout}, indent=2)
        )
        return 0
    for t in catalog:
        params = t["parameters"].get("properties", {})
        required = set(t["parameters"].get("required", []))
        shown = ", ".join(f"{n}{'' if n in required else '?'}" for n in params) or "-"
        print(f"{t['name']:<22} {t['kind']:<8} ({shown})\n    {t['description']}")
    print(
        f"\nEach result is cut to {tools.max_chars} characters (meta.tool_output_share of "
        f"roles.meta.context_size, at most meta.tool_output_max_chars); each call times out after "
        f"{tools.timeout:g}s."
    )
    return 0
