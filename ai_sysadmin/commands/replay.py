"""`ai-sysadmin replay SOURCE`: run L1 over a journal file/directory, a JSON export or text lines."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from typing import Any, TextIO

from ai_sysadmin.trigger.model import SEVERITY_RANK, Trigger
from ai_sysadmin.trigger.reader import JournalctlError

PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr
MAX_BAD_SHOWN = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="run the L1 trigger pipeline over a journal or log file and print triggers")
    p.add_argument("source", help="journal file or directory, `journalctl -o json` export, or text log")
    p.add_argument("--format", choices=("text", "json"), default="text", help="json: one object per trigger")
    p.add_argument("--no-model", action="store_true", help="deterministic rules only; never call the trigger model")
    p.add_argument("--window", type=positive_int, metavar="SECONDS",
                   help="dedup window (default: trigger.window_seconds)")
    p.add_argument("--state-dir", metavar="DIR",
                   help="keep templates and model answers here (default: in memory, the service state is untouched)")
    p.add_argument("--kind", choices=("journal", "json", "text"), help="override input detection")
    p.add_argument("--through", choices=("triggers", "review"), default="triggers",
                   help="review: also incidents, context, review and policy (dry run: executes nothing)")
    p.add_argument("--autonomy", choices=("observe", "suggest", "auto-safe", "auto-full"),
                   help="with --through review: the autonomy level the policy decides at")
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
        print(f"ai-sysadmin replay: {exc.filename or args.source}: permission denied; run as a user that can "
              "read it (the system journal: group systemd-journal)", file=sys.stderr)
        return 2
    except JournalctlError as exc:
        print(f"ai-sysadmin replay: {args.source}: {exc}", file=sys.stderr)
        return 2


def _unreadable(source: str) -> str | None:
    """Why `source` cannot be read, checked up front so the error names the file, not a traceback."""
    if not os.path.exists(source):
        return f"{source}: no such file or directory"
    if not os.access(source, os.R_OK | (os.X_OK if os.path.isdir(source) else 0)):
        return f"{source}: permission denied; run as a user that can read it (the system journal: group systemd-journal)"
    if not os.path.isdir(source) and not os.path.isfile(source):
        return f"{source}: not a regular file or directory"
    return None


async def replay(args: argparse.Namespace, cfg: Any, out: TextIO, err: TextIO) -> int:
    from ai_sysadmin.llm import LLMClient
    from ai_sysadmin.trigger.service import build_pipeline
    from ai_sysadmin.trigger.sources import iter_entries

    tcfg = cfg.trigger
    if args.window:
        tcfg = dataclasses.replace(tcfg, window_seconds=args.window)
    # Replay is offline work: no per-minute budget, but still one call per new template.
    tcfg = dataclasses.replace(tcfg, model_calls_per_minute=1e9)
    use_model = not args.no_model and tcfg.model and cfg.roles.trigger.enable
    client = LLMClient(cfg.roles.trigger) if use_model else None
    pipeline = build_pipeline(tcfg, state_dir=args.state_dir, model=client)
    bad_shown = 0

    def on_bad(lineno: int, reason: str) -> None:
        nonlocal bad_shown
        pipeline.bad_line()
        if bad_shown < MAX_BAD_SHOWN:
            print(f"replay: line {lineno}: skipped: {reason}", file=err)
            bad_shown += 1

    worker = asyncio.create_task(pipeline.classifier.run()) if pipeline.classifier else None
    started = last = time.monotonic()
    try:
        for i, entry in enumerate(iter_entries(args.source, max_message=tcfg.max_message, on_bad=on_bad,
                                               kind=args.kind), 1):
            pipeline.process(entry)
            if i % 4096 == 0:
                await asyncio.sleep(0)  # let model calls progress
                now = time.monotonic()
                if now - last >= PROGRESS_EVERY:
                    last = now
                    print(f"replay: {i} entries, {i / (now - started):,.0f}/s, "
                          f"{pipeline.stats.novel_templates} templates", file=err)
        if pipeline.classifier is not None:
            await pipeline.classifier.drain()
            while not pipeline.classifier.idle:
                await asyncio.sleep(0.05)
    finally:
        if worker is not None:
            worker.cancel()
        if client is not None:
            await client.aclose()
    triggers = sorted(pipeline.totals(), key=lambda t: (t.first_seen, -SEVERITY_RANK[t.severity], t.id))
    if getattr(args, "through", "triggers") == "review":
        from ai_sysadmin.review.replay import through_review

        print(f"replay: {pipeline.stats.entries} entries, {len(triggers)} trigger(s)", file=err)
        return await through_review(cfg, triggers, out, err, use_model=not args.no_model,
                                    autonomy=args.autonomy, metrics_path=args.metrics)
    for t in triggers:
        print(json.dumps(_row(t), ensure_ascii=False) if args.format == "json" else _text(t), file=out)
    s = pipeline.stats
    c = pipeline.classifier
    model = "off" if c is None else (f"{c.calls} call(s), degraded: {c.last_error}" if c.degraded
                                     else f"{c.calls} call(s)")
    print(f"replay: {s.entries} entries, {s.bad_lines} bad line(s), {s.novel_templates} templates, "
          f"{len(triggers)} trigger(s); model: {model}", file=err)
    return 0


def _row(t: Trigger) -> dict[str, Any]:
    return t.to_json()


def _text(t: Trigger) -> str:
    when = t.first_seen.strftime("%Y-%m-%d %H:%M:%S")
    unit = t.unit or "-"
    summary = f"  -- {t.summary}" if t.summary else ""
    return f"{when} {t.severity:<8} {t.category:<12} {unit:<24} {t.source:<22} x{t.count:<5} {t.template}{summary}"
