"""`ai-sysadmin ask "QUESTION" [--incident ID] [--format json]`: one L4 investigation with live context.

Text output streams: each tool step as it starts and returns, then the answer as the
model writes it, then the stored diagnosis.  `--format json` prints one object
(answer, diagnosis, steps, proposals, finding id, outcome) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ask", help="investigate a question with the meta model and read-only tools")
    p.add_argument("question")
    p.add_argument("--incident", type=int, metavar="ID", help="investigate this incident (its triggers as context)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    if not args.question.strip():
        print("ai-sysadmin ask: the question is empty; write what you want to know in quotes", file=sys.stderr)
        return 2
    cfg = load()
    return asyncio.run(_ask(args, cfg))


async def _ask(args: argparse.Namespace, cfg: Any) -> int:
    from ai_sysadmin.compose.session import open_session

    printer = EventPrinter(sys.stdout) if args.format == "text" else None
    async with open_session(cfg) as session:
        for w in session.warnings:
            print(f"ai-sysadmin: {w}", file=sys.stderr)
        result = await session.investigator.investigate(
            args.question, incident_id=args.incident, on_event=printer.on_event if printer else None
        )
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, default=str))
    else:
        printer.finish(result)  # type: ignore[union-attr]
    if result.outcome == "failed":
        print(f"ai-sysadmin: the investigation failed: {result.error}; run `ai-sysadmin doctor`", file=sys.stderr)
        return 1
    return 0


class EventPrinter:
    """Renders investigation events for a terminal as they happen."""

    def __init__(self, out: TextIO):
        self.out = out
        self.in_answer = False

    async def on_event(self, event: Any) -> None:
        d = event.data
        if event.kind == "step_start":
            self._end_answer()
            self._print(f"→ {d['call_id']} {d['tool']} {json.dumps(d['arguments'], sort_keys=True)[:200]}")
        elif event.kind == "step_result":
            mark = "✓" if d["ok"] else "✗"
            self._print(f"  {mark} {d['call_id']} {d['summary']}")
        elif event.kind == "answer_delta":
            if not self.in_answer:
                self.out.write("\nAnswer: ")
                self.in_answer = True
            self.out.write(d["text"])
            self.out.flush()
        elif event.kind == "proposal":
            self._end_answer()
            action_id = f" as action #{d['action_id']}" if d.get("action_id") else ""
            self._print(
                f"proposal: {d['action']} {json.dumps(d['params'], sort_keys=True)[:120]} -> "
                f"{d['decision']} (risk {d['risk'] or 'unknown'}){action_id}: {d['reason'][:160]}"
            )
        elif event.kind == "error":
            self._end_answer()
            self._print(f"! {d.get('message', '')}")

    def _end_answer(self) -> None:
        if self.in_answer:
            self.out.write("\n")
            self.in_answer = False

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def finish(self, result: Any) -> None:
        self._end_answer()
        d = result.diagnosis
        stored = f", stored as finding #{result.finding_id}" if result.finding_id else ", not stored"
        self._print(
            f"\nDiagnosis ({d.get('source', 'model')}, confidence {d.get('confidence', 0):.2f}, "
            f"severity {d.get('severity', 'info')}{stored}; outcome {result.outcome}):"
        )
        self._print(f"  root cause: {d.get('root_cause', '')}")
        for e in d.get("evidence", []):
            self._print(
                f"  evidence {e.get('kind')} {e.get('id')}{'' if e.get('verified') else ' (unverified)'}: "
                f"{e.get('note', '')}"
            )
        for c in d.get("admin_checks", []):
            self._print(f"  check: {c}")
        self._print(f"  {len(result.steps)} step(s) in {result.latency_s:.1f}s")
