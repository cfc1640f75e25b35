"""`ai-sysadmin chat`: a REPL over the same investigation loop, with history and streaming.

Commands: `/incident ID` (investigate in the context of an incident; `/incident` alone
clears it), `/actions` (pending actions), `/approve ID DIGEST [REASON]` (the approval rules of
the actions catalog: it needs the approval key), `/help`, `/quit`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, TextIO

HELP = (
    "commands: /incident ID | /incident (clear) | /actions | /approve ID DIGEST [REASON] | /help | /quit; "
    "anything else is a question"
)
MAX_HISTORY = 20  # messages of earlier turns sent with each question


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="interactive investigation with the meta model")
    p.add_argument("--incident", type=int, metavar="ID", help="start in the context of this incident")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load) -> int:
    cfg = load()
    return asyncio.run(Chat(cfg, sys.stdin, sys.stdout, incident=args.incident).run())


class Chat:
    def __init__(self, cfg: Any, inp: TextIO, out: TextIO, *, incident: int | None = None, key_file: str | None = None):
        self.cfg = cfg
        self.inp = inp
        self.out = out
        self.incident = incident
        self.key_file = key_file
        self.history: list[dict[str, str]] = []

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def _readline(self) -> str | None:
        if self.inp.isatty():
            self.out.write(f"{'#' + str(self.incident) + ' ' if self.incident else ''}> ")
            self.out.flush()
        line = await asyncio.to_thread(self.inp.readline)
        return None if line == "" else line.rstrip("\n")

    async def run(self) -> int:
        from ai_sysadmin.compose.session import open_session

        async with open_session(self.cfg) as session:
            for w in session.warnings:
                self.say(f"warning: {w}")
            self.say(f"ai-sysadmin chat ({HELP})")
            while True:
                line = await self._readline()
                if line is None or line.strip() in ("/quit", "/exit"):
                    return 0
                line = line.strip()
                if not line:
                    continue
                try:
                    if line.startswith("/"):
                        await self.command(session, line)
                    else:
                        await self.ask(session, line)
                except Exception as exc:  # one bad turn never ends the session
                    self.say(f"error: {exc.__class__.__name__}: {str(exc)[:300]}")

    async def ask(self, session: Any, question: str) -> None:
        from ai_sysadmin.commands.ask import EventPrinter

        printer = EventPrinter(self.out)
        result = await session.investigator.investigate(
            question, history=self.history[-MAX_HISTORY:], incident_id=self.incident, on_event=printer.on_event
        )
        printer.finish(result)
        self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": result.answer}]

    async def command(self, session: Any, line: str) -> None:
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if verb == "/help":
            self.say(HELP)
        elif verb == "/incident":
            if not rest:
                self.incident = None
                self.say("no incident context")
            elif not rest.isdigit():
                self.say("usage: /incident ID (a number)")
            else:
                await self._set_incident(session, int(rest))
        elif verb == "/actions":
            await self._actions(session)
        elif verb == "/approve":
            await self._approve(session, rest)
        else:
            self.say(f"unknown command {verb}; {HELP}")

    async def _set_incident(self, session: Any, incident_id: int) -> None:
        if session.pool is None:
            self.say("no database: incident context is unavailable")
            return
        from ai_sysadmin.store.incidents import IncidentStore

        inc = await IncidentStore(session.pool).show(incident_id)
        if inc is None:
            self.say(f"no incident {incident_id}")
            return
        self.incident = incident_id
        self.say(f"incident #{incident_id}: {inc['title']} [{inc['status']}]")

    async def _actions(self, session: Any) -> None:
        if session.pool is None:
            self.say("no database: actions are unavailable")
            return
        from ai_sysadmin.actions import approvals, signing

        rows = [
            r
            for r in await approvals.list_actions(session.pool, None, 50)
            if r["status"] in ("queued", "proposed", "approved", "executing")
        ]
        if not rows:
            self.say("no pending actions")
        for r in rows:
            self.say(
                f"#{r['id']} {r['status']} {r['risk'] or '-'} {r['action']} {json.dumps(r['params'])[:80]} "
                f"(incident {r.get('incident_id') or '-'}): {str(r.get('decision_reason') or '')[:80]}"
            )
            self.say(
                f"    target {r.get('target') or '-'}, digest {signing.digest(r)} "
                f"(/approve {r['id']} {signing.digest(r)} REASON)"
            )

    async def _approve(self, session: Any, rest: str) -> None:
        ident, _, rest = rest.partition(" ")
        digest, _, reason = rest.strip().partition(" ")
        if not ident.isdigit() or not digest:
            self.say("usage: /approve ID DIGEST [REASON] (the digest /actions shows: what you approve)")
            return
        if session.pool is None:
            self.say("no database: actions are unavailable")
            return
        from ai_sysadmin.actions import approvals, signing
        from ai_sysadmin.commands.actions import local_actor

        try:
            key = signing.load_key(self.cfg, override=self.key_file)
        except signing.KeyUnavailable as exc:
            self.say(f"cannot approve: {exc}")
            return
        try:
            out = await approvals.approve(
                session.pool,
                int(ident),
                local_actor(),
                reason.strip() or "approved in ai-sysadmin chat",
                digest=digest,
                key=key,
                ttl_seconds=self.cfg.actions.approval_ttl_seconds,
            )
        except approvals.ApprovalError as exc:
            self.say(f"cannot approve: {exc}")
            return
        self.say(
            f"action {ident} approved by {out['approver']}, valid until {out['expires_at']}: "
            f"{out['action']} {json.dumps(out['params'])} (digest {out['digest']})"
        )
