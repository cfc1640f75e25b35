"""`ai-sysadmin replay SOURCE`: run L1 over a journal file/directory, a JSON export or text lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any, TextIO

from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.reader import JournalctlError
from ai_sysadmin.vocab import AUTONOMY_LEVELS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="run the L1 trigger pipeline over a journal or log file and print triggers")
    p.add_argument("source", help="journal file or directory, `journalctl -o json` export, or text log")
    p.add_argument("--format", choices=("text", "json"), default="text", help="json: one object per trigger")
    p.add_argument("--no-model", action="store_true", help="deterministic rules only; never call the trigger model")
    p.add_argument(
        "--window", type=positive_int, metavar="SECONDS", help="dedup window (default: trigger.window_seconds)"
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="keep templates and model answers here (default: in memory, the service state is untouched)",
    )
    p.add_argument("--kind", choices=("journal", "json", "text"), help="override input detection")
    p.add_argument(
        "--through",
        choices=("triggers", "review"),
        default="triggers",
        help="review: also incidents, context, review and policy (dry run: executes nothing)",
    )
    p.add_argument(
        "--autonomy", choices=AUTONOMY_LEVELS, help="with --through review: the autonomy level the policy decides at"
    )
    p.add_argument("--metrics", metavar="SNAPSHOT", help="with --through review: a metric snapshot JSON file")
    p.set_defaults(func=run)


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1 (a zero or negative window/limit is a typo)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace, load) -> int:
    cfg = load()
    logging.getLogger("drain3").setLevel(logging.WARNING)  # its INFO lines are noise for an admin
    problem = _unreadable(args.source)
    if problem:
        print(f"ai-sysadmin replay: {problem}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(replay(args, cfg, sys.stdout, sys.stderr))
    except FileNotFoundError as exc:
        print(f"ai-sysadmin replay: {exc.filename}: no such file or directory", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(
            f"ai-sysadmin replay: {exc.filename or args.source}: permission denied; run as a user that can "
            "read it (the system journal: group systemd-journal)",
            file=sys.stderr,
        )
        return 2
    except JournalctlError as exc:
        print(f"ai-sysadmin replay: {args.source}: {exc}", file=sys.stderr)
        return 2


def _unreadable(source: str) -> str | None:
    """Why `source` cannot be read, checked up front so the error names the file, not a traceback."""
    if not os.path.exists(source):
        return f"{source}: no such file or directory"
    if not os.access(source, os.R_OK | (os.X_OK if os.path.isdir(source) else 0)):
        return (
            f"{source}: permission denied; run as a user that can read it (the system journal: group systemd-journal)"
        )
    if not os.path.isdir(source) and not os.path.isfile(source):
        return f"{source}: not a regular file or directory"
    return None


async def replay(args: argparse.Namespace, cfg: Any, out: TextIO, err: TextIO) -> int:
    from ai_sysadmin.trigger.replay import run_l1

    l1 = await run_l1(
        cfg,
        args.source,
        use_model=not args.no_model,
        window=args.window,
        state_dir=args.state_dir,
        kind=args.kind,
        err=err,
    )
    triggers, s = l1.triggers, l1.pipeline.stats
    if getattr(args, "through", "triggers") == "review":
        from ai_sysadmin.review.replay import through_review

        print(f"replay: {s.entries} entries, {len(triggers)} trigger(s)", file=err)
        return await through_review(
            cfg, triggers, out, err, use_model=not args.no_model, autonomy=args.autonomy, metrics_path=args.metrics
        )
    for t in triggers:
        print(json.dumps(_row(t), ensure_ascii=False) if args.format == "json" else _text(t), file=out)
    print(
        f"replay: {s.entries} entries, {s.bad_lines} bad line(s), {s.novel_templates} templates, "
        f"{len(triggers)} trigger(s); model: {l1.model_summary}",
        file=err,
    )
    return 0


def _row(t: Trigger) -> dict[str, Any]:
    return t.to_json()


def _text(t: Trigger) -> str:
    when = t.first_seen.strftime("%Y-%m-%d %H:%M:%S")
    unit = t.unit or "-"
    summary = f"  -- {t.summary}" if t.summary else ""
    return f"{when} {t.severity:<8} {t.category:<12} {unit:<24} {t.source:<22} x{t.count:<5} {t.template}{summary}"
