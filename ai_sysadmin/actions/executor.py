"""The executor: the only privileged part.  Picks up approved actions, re-validates, runs, verifies.

Pickup is PostgreSQL LISTEN/NOTIFY on `ai_sysadmin_actions` (a trigger on `actions`
notifies whenever a row becomes `approved`, whoever wrote it) plus a slow poll in case
a notification was missed.  It needs nothing but the database: no socket of its own,
no network, no polkit rule to keep in sync with the catalog.

For every approved action it re-reads the row and trusts none of it: the catalog id
and parameters are validated again, the risk is the catalog's (a row whose risk
differs is refused), protected units come from its own config (and every alias
systemd reports for the unit), the pause from the decision ledger.  An action with a
rejection recorded is refused, whatever its row says.  A person's approval must carry a
valid HMAC signature (actions/signing.py) over the digest of the row as it is now, must
not have expired, and runs once: its use is recorded in the ledger (store/ledger.py),
which only this executor's role writes.  An approval by the service's policy is
re-decided with the executor's own autonomy level, limits, cool-downs, pause and
breakers -- honouring only validly signed resumes and clearings.  Then it checks the
action's declared preconditions against the live host (actions/preconditions.py: the
unit really failed, the disk really is full, the system is still the generation a
rollback was bound to).  Only then does it run the catalog's argv (no shell), with a
timeout and bounded output, and verify.

Crash safety: an action found `executing` at start (the executor died mid-action) is
marked `interrupted` and verified; it is never re-run on the executor's own.

Hosts (docs/fleet.md): every executor runs only the actions addressed to its host -- a
hub's or standalone one those of the database's own host (migration 9's `local_host`),
a fleet member's (`HubSeat`) those of its host id, on the hub's database as the member's
own role (row-level security hides every other host's rows).  A person's approval is
checked with the executor's own host id, never the row's.  A member LISTENs on the
host channel (payload: a host, only a hint), uses the hub's decision ledger without
owning it, and while the hub is unreachable it stays idle: nothing is kept to run
later, and an approval that expired meanwhile is refused as expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ai_sysadmin.actions import preconditions, signing
from ai_sysadmin.actions.catalog import Catalog, Paths, ProposalRejected, Step, ValidatedAction, load_catalog
from ai_sysadmin.actions.facts import gather, now_utc, paused_until
from ai_sysadmin.actions.policy import is_protected
from ai_sysadmin.actions.proposals import POLICY_APPROVER, SERVICE_ACTOR
from ai_sysadmin.actions.runner import RunResult, run_argv
from ai_sysadmin.actions.types import ActionStatus as S
from ai_sysadmin.actions.types import PolicyDecision
from ai_sysadmin.actions.verification import Verifier, has_systemd, is_nixos, unit_names, unit_props
from ai_sysadmin.config import Config
from ai_sysadmin.store import actions as ledger_actions
from ai_sysadmin.store import audit, ledger
from ai_sysadmin.store.db import connect_kwargs
from ai_sysadmin.store.incidents import reopen
from ai_sysadmin.store.migrations import HOST_CHANNEL
from ai_sysadmin.tasks import stop_tasks

log = logging.getLogger(__name__)

CHANNEL = "ai_sysadmin_actions"
ACTOR = "ai-sysadmin-executor"
# Held for the executor's whole session: one executor per database.
EXECUTOR_LOCK = 0x41_49_53_45_58  # "AISEX"


@dataclass(frozen=True)
class HubSeat:
    """A fleet member's executor: its host id and how it reaches the hub's database as its own role."""

    host: str
    connect: Callable[[], Awaitable[psycopg.AsyncConnection]]


def member_lock(host: str) -> int:
    """The advisory lock of `host`'s executor on the hub: one executor per host, not per database."""
    return int.from_bytes(hashlib.sha256(f"ai-sysadmin-executor:{host}".encode()).digest()[:8], "big", signed=True)


class Refusal(Exception):
    def __init__(self, status: S, reason: str):
        self.status = status  # refused | expired
        self.reason = reason
        super().__init__(reason)


class Executor:
    def __init__(
        self,
        cfg: Config,
        *,
        catalog: Catalog | None = None,
        clock: Callable[[], datetime] | None = None,
        out: Callable[[str], None] | None = None,
        seat: HubSeat | None = None,
    ):
        self.cfg = cfg
        self.seat = seat
        # Whose actions it runs: the member's host, or (read at start) the database's own.
        self.host: str | None = seat.host if seat else None
        self.catalog = catalog or load_catalog()
        self.clock = clock or now_utc
        self.paths = Paths(system_profile=cfg.actions.system_profile, current_system=cfg.actions.current_system)
        self.out = out or (lambda line: print(line, flush=True))
        self._key: bytes | None = None
        self._key_error: str | None = None
        try:
            self._key = signing.load_key(cfg)
        except signing.KeyUnavailable as exc:
            self._key_error = str(exc)
        self.handled = 0
        self.listening = False  # true while it waits for a NOTIFY (tests and benches wait on it)
        self.woken = 0  # NOTIFYs for its host that woke it (tests tell them from the poll)
        self._unreachable = False  # in an outage of the database: logged once

    # ------------------------------------------------------------------ lifecycle

    def nix_runs(self) -> bool:
        mode = self.cfg.actions.nix_mode
        return mode == "run" or (mode == "auto" and is_nixos())

    async def connect(self) -> psycopg.AsyncConnection:
        if self.seat is not None:
            return await self.seat.connect()
        db = self.cfg.database
        # pg_catalog first, whatever the database's owner (the orchestrator) set with ALTER
        # DATABASE: its own functions or operators must not shadow the built-ins we rely on.
        return await psycopg.AsyncConnection.connect(
            db.conninfo(),
            autocommit=True,
            **{**connect_kwargs(db), "application_name": ACTOR, "options": "-c search_path=pg_catalog,public"},
        )

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> int:
        if self._key is None:
            log.warning("executor: %s; only actions its own policy lets run automatically will run", self._key_error)
        log.info(
            "executor: autonomy %s, Nix actions %s, systemd %s",
            self.cfg.autonomy_level,
            "run" if self.nix_runs() else "DRY RUN (not NixOS)",
            "yes" if has_systemd() else "no",
        )
        while not stop.is_set():
            try:
                listen = await self.connect()
            except psycopg.OperationalError as exc:
                self._outage(exc)
                await _wait(stop, self.cfg.actions.poll_interval)
                continue
            if self._unreachable:
                log.warning("executor: %s reachable again; resuming", "the hub" if self.seat else "the database")
                self._unreachable = False
            try:
                lock = member_lock(self.seat.host) if self.seat else EXECUTOR_LOCK
                if not await ledger_actions.try_session_lock(listen, lock):
                    log.error("executor: another executor holds the lock for this host's actions; exiting")
                    return 1
                work = await self.connect()
                try:
                    problem = await self._open_ledger(work)
                    if problem is not None:
                        # A member waits for the hub's executor to create the ledger.
                        retry = self.seat is not None and not once
                        log.error("executor: %s; %s", problem, "idle, retrying" if retry else "exiting")
                        if not retry:
                            return 1
                        await _wait(stop, self.cfg.actions.poll_interval)
                        continue
                    await self.recover(work)
                    await listen.execute(f"LISTEN {HOST_CHANNEL if self.seat else CHANNEL}")
                    while not stop.is_set():
                        await self.process_pending(work)
                        if once:
                            return 0
                        await self._wait_notify(listen, stop)
                finally:
                    await work.close()
            except psycopg.OperationalError as exc:
                self._outage(exc)
                await _wait(stop, min(5.0, self.cfg.actions.poll_interval))
            except Exception:
                # A row or a bug must not crash-loop the unit: log it, wait a poll, start over
                # (recovery then marks an action this left `executing` as interrupted).
                log.exception("executor: unexpected error; retrying after %.0fs", self.cfg.actions.poll_interval)
                await _wait(stop, self.cfg.actions.poll_interval)
            finally:
                await listen.close()
        return 0

    def _outage(self, exc: Exception) -> None:
        """One warning per outage: while the database (a member: the hub) is away the executor idles."""
        if self._unreachable:
            return
        self._unreachable = True
        where = "the hub's database" if self.seat else "the database"
        log.warning(
            "executor: %s is unreachable (%s); idle, nothing runs until it is back",
            where,
            (str(exc).strip().splitlines() or [type(exc).__name__])[-1],
        )

    async def _open_ledger(self, conn: psycopg.AsyncConnection) -> str | None:
        """Create the ledger (its owner, the hub's or standalone executor) or check the hub's (a member)."""
        if self.seat is not None:
            return await ledger.untrusted_for_member(conn)
        try:
            await ledger.ensure(conn)
        except ledger.LedgerUnavailable as exc:
            return str(exc)
        return None

    async def _wait_notify(self, listen: psycopg.AsyncConnection, stop: asyncio.Event) -> None:
        gen = listen.notifies(timeout=self.cfg.actions.poll_interval)
        waiter = asyncio.ensure_future(self._drain_for_me(gen))
        stopper = asyncio.ensure_future(stop.wait())
        self.listening = True
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.listening = False
            await stop_tasks(waiter, stopper)

    # ------------------------------------------------------------------ recovery

    async def recover(self, conn: psycopg.AsyncConnection) -> list[int]:
        """`executing` at start: the previous executor died mid-action.  Mark, verify, never re-run."""
        rows = await ledger_actions.with_status(conn, S.EXECUTING, await self._own_host(conn))
        for row in rows:
            now = self.clock()
            async with conn.transaction():
                await self._move(
                    conn,
                    row["id"],
                    S.EXECUTING,
                    S.INTERRUPTED,
                    now,
                    "executor stopped mid-action; not re-run, verifying what happened",
                    "action.interrupted",
                    {"action": row["action"], "params": row["params"]},
                )
            verification = await self._verify_row(conn, row, steps_ok=True, interrupted=True)
            async with conn.transaction():
                await ledger_actions.update(
                    conn, row["id"], verification=verification, finished_at=self.clock(), updated_at=self.clock()
                )
                await self._audit(conn, self.clock(), "action.interrupted.verified", row["id"], verification)
                if not verification["passed"]:
                    await self._trip(conn, row, "verification failed after an interrupted run")
            log.warning(
                "executor: action %s was interrupted; verification %s",
                row["id"],
                "passed" if verification["passed"] else "FAILED",
            )
        return [r["id"] for r in rows]

    # ------------------------------------------------------------------ the work

    async def process_pending(self, conn: psycopg.AsyncConnection) -> int:
        done = 0
        while True:
            handled = await self.process_one(conn)
            if handled is None:
                return done
            done += 1

    async def process_one(self, conn: psycopg.AsyncConnection) -> int | None:
        """Claim and handle the oldest approved action; None when there is none (or paused)."""
        now = self.clock()
        async with conn.transaction():
            if await paused_until(conn, now, self.verify_decision) is not None:
                return None  # approved actions wait; their approval may expire meanwhile
            row = await ledger_actions.claim_approved(conn, await self._own_host(conn))
            if row is None:
                return None
            action_id: int = row["id"]
            try:
                va, how = await self.revalidate(conn, row, now)
                # After the approval checks (a forged approval is refused as forged), before
                # anything runs: the catalog's preconditions, read from the live host.
                unmet = await preconditions.unmet(va, self.cfg, self.paths)
                if unmet is not None:
                    raise Refusal(S.REFUSED, f"precondition not met: {unmet}")
            except Refusal as r:
                await self._move(
                    conn,
                    row["id"],
                    S.APPROVED,
                    r.status,
                    now,
                    r.reason,
                    f"action.{r.status}",
                    {"action": row["action"], "params": row["params"], "reason": r.reason},
                )
                log.warning("executor: action %s %s: %s", row["id"], r.status, r.reason)
                self.handled += 1
                return action_id
            dry = va.spec.needs_nixos and not self.nix_runs()
            if dry:
                await self._dry_run(conn, row, va, now)
                self.handled += 1
                return action_id
            verifier = Verifier(self.cfg, started_at=now, conn=None)
            before = await verifier.before(va)
            await ledger_actions.transition(
                conn,
                row["id"],
                S.APPROVED,
                S.EXECUTING,
                actor=ACTOR,
                at=now,
                reason=f"re-validated ({how}); running",
                event="action.executing",
                detail={
                    "action": va.id,
                    "params": va.params,
                    "approval": how,
                    "argv": [list(s.argv) for s in va.steps(self.paths)],
                },
                fields={
                    "started_at": now,
                    "executed_by": f"{ACTOR}@{socket.gethostname()}",
                    "result": {"mode": "run", "before": before, "approval": how, "steps": []},
                },
            )
        # Committed: the row says `executing` before anything runs (crash safety).
        results = await self._run_steps(conn, row["id"], va)
        steps_ok = all(r.ok for r in results)
        verification = await self._verify_row(
            conn, {**row, "result": {"before": before}, "started_at": now}, steps_ok=steps_ok
        )
        final = S.VERIFIED if verification["passed"] else S.FAILED
        end = self.clock()
        async with conn.transaction():
            await self._move(
                conn,
                row["id"],
                S.EXECUTING,
                final,
                end,
                "verification passed"
                if final == S.VERIFIED
                else "verification failed: " + "; ".join(c["check"] for c in verification["checks"] if not c["passed"]),
                f"action.{final}",
                {"verification": verification},
                fields={"verification": verification, "finished_at": end},
            )
            if final == S.FAILED:
                await self._trip(conn, row, "verification failed")
        log.info("executor: action %s %s %s: %s", row["id"], va.id, va.params, final)
        self.handled += 1
        return action_id

    async def _own_host(self, conn: psycopg.AsyncConnection) -> str:
        """Whose actions this executor runs: the seat's host, else the database's own (read once)."""
        if self.host is None:
            self.host = await ledger_actions.local_host(conn) or self.cfg.fleet.host_id()
        return self.host

    async def _drain_for_me(self, gen: Any) -> None:
        """Until a NOTIFY for this executor (any on the local channel; its host's on the host channel)."""
        async for n in gen:
            if self.seat is None or n.payload == self.seat.host:
                self.woken += 1
                return

    def verify_decision(self, d: ledger.Decision) -> bool:
        """A ledger decision's signature, checked with this executor's key (none: nothing is valid)."""
        if self._key is None:
            return False
        return signing.valid_decision(self._key, d.signature, d.kind, d.target, d.until, d.actor, d.at)

    async def revalidate(
        self, conn: psycopg.AsyncConnection, row: dict[str, Any], now: datetime
    ) -> tuple[ValidatedAction, str]:
        """Everything again, from the catalog and this executor's own config; raises Refusal."""
        try:
            va = self.catalog.validate(row["action"], row["params"])
        except ProposalRejected as exc:
            raise Refusal(S.REFUSED, f"not a valid catalog action: {exc}") from None
        if row["risk"] != va.risk:
            raise Refusal(S.REFUSED, f"recorded risk {row['risk']!r} is not the catalog's {va.risk!r}")
        if row["target"] is not None and row["target"] != va.target:
            raise Refusal(S.REFUSED, f"recorded target {row['target']!r} is not {va.target!r}")
        aliases: tuple[str, ...] = ()
        if va.unit and has_systemd():
            aliases = await unit_names(va.unit)
        a = self.cfg.actions
        for u in (va.unit, *aliases):
            if u and is_protected(u, self.cfg.protected_units, a.protected_patterns):
                raise Refusal(S.REFUSED, f"protected unit {u} (executor's own list): never acted on")
        await self._check_decisions(conn, row)
        ap = await ledger_actions.latest_approval(conn, row["id"])
        if ap is None:
            raise Refusal(S.REFUSED, "approved without an approval record")
        if ap["expires_at"] <= now:
            raise Refusal(S.EXPIRED, f"approval by {ap['approver']} expired at {ap['expires_at'].isoformat()}")
        if ap["approved_at"] > now + timedelta(seconds=60):
            raise Refusal(S.REFUSED, "approval is dated in the future")
        if ap["signature"] is not None or ap["kind"] == "person":
            return va, await self._check_person_approval(conn, row, ap)
        # The service's own approval: only what THIS config's policy would run automatically.
        facts = await gather(
            conn, self.cfg, va, now, exclude_id=row["id"], extra_units=aliases, verify=self.verify_decision
        )
        d = facts.decide(self.cfg.autonomy_level, va)
        if d.decision != PolicyDecision.EXECUTE:
            raise Refusal(
                S.REFUSED, f"no person approved it and the executor's own policy says {d.decision}: {d.reason}"
            )
        return va, f"policy ({d.reason})"

    async def _check_decisions(self, conn: psycopg.AsyncConnection, row: dict[str, Any]) -> None:
        """What a person decided and the orchestrator cannot undo: the ledger, and a rejection."""
        problem = await (ledger.untrusted_for_member(conn) if self.seat else ledger.untrusted(conn))
        if problem:
            raise Refusal(S.REFUSED, problem)
        for d in await ledger.rejections(conn, row["id"]):
            raise Refusal(
                S.REFUSED, f"rejected by {d.actor} at {d.at.isoformat(timespec='seconds')}; a rejection is final"
            )
        who = await ledger_actions.rejected_step_actor(conn, row["id"])
        if who is not None:
            raise Refusal(S.REFUSED, f"rejected by {who}; a rejection is final")

    async def _check_person_approval(
        self, conn: psycopg.AsyncConnection, row: dict[str, Any], ap: dict[str, Any]
    ) -> str:
        """A signed approval of exactly this row, not used before; records its use."""
        if self._key is None:
            raise Refusal(S.REFUSED, f"cannot check a person's approval: {self._key_error}")
        if ap["approver"] in (SERVICE_ACTOR, POLICY_APPROVER, ACTOR):
            raise Refusal(S.REFUSED, f"approver {ap['approver']!r} is the service, not a person")
        now_digest = signing.digest(row)
        if ap.get("digest") != now_digest:
            raise Refusal(
                S.REFUSED,
                f"approval signature does not cover this action: it changed since "
                f"{ap['approver']} approved it (approved digest {ap.get('digest')}, "
                f"now {now_digest})",
            )
        # This executor's host, not the row's: an approval made for another host fails here.
        if not signing.valid(
            self._key,
            ap["signature"],
            row["id"],
            ap["digest"],
            ap["approver"],
            ap["approved_at"],
            ap["expires_at"],
            await self._own_host(conn),
        ):
            raise Refusal(
                S.REFUSED,
                "approval signature is not valid for this action on this host (not made with the "
                "approval key, made for another host, or the action was changed after approval)",
            )
        # A signature is good for one run, across executor restarts: a re-inserted copy of
        # an action that already ran (same id, same approval) is a replay.
        use = ledger.use_member_approval if self.seat else ledger.use_approval
        if not await use(conn, ap["signature"], row["id"], ap["digest"]):
            raise Refusal(S.REFUSED, "this approval was already used: an action runs once per approval")
        return f"approved by {ap['approver']} (signed, digest {ap['digest'][:16]})"

    async def _run_steps(self, conn: psycopg.AsyncConnection, action_id: int, va: ValidatedAction) -> list[RunResult]:
        results: list[RunResult] = []
        cap = self.cfg.actions.output_cap_bytes
        for step in va.steps(self.paths):
            if step.detached:
                r = await self._run_detached(step, action_id, va.spec.timeout)
            else:
                r = await run_argv(step.argv, timeout=va.spec.timeout, cap=cap)
            results.append(r)
            async with conn.transaction():
                await ledger_actions.append_step_result(conn, action_id, r.to_json())
                await self._audit(
                    conn,
                    self.clock(),
                    "action.step",
                    action_id,
                    {
                        "argv": list(r.argv),
                        "exit_status": r.exit_status,
                        "error": r.error,
                        "seconds": round(r.seconds, 3),
                    },
                )
            if not r.ok:
                break
        return results

    async def _run_detached(self, step: Step, action_id: int, timeout: float) -> RunResult:
        # Run the store path the profile points at now, not the mutable link.
        argv = (os.path.realpath(step.argv[0]), *step.argv[1:])
        cap = self.cfg.actions.output_cap_bytes
        if not has_systemd():
            # Named: off systemd there is no unit to detach into; it runs as our child.
            r = await run_argv(argv, timeout=timeout, cap=cap)
            return RunResult(
                r.argv,
                r.exit_status,
                r.stdout,
                r.stderr + "\n[ran directly: no systemd]",
                r.truncated,
                r.seconds,
                r.error,
            )
        unit = f"ai-sysadmin-action-{action_id}.service"
        start = await run_argv(
            [
                "systemd-run",
                f"--unit={unit}",
                "--service-type=oneshot",
                "--property=RemainAfterExit=yes",
                "--no-block",
                f"--description=ai-sysadmin action {action_id}",
                "--",
                *argv,
            ],
            timeout=60,
            cap=cap,
        )
        if not start.ok:
            return start
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        p: dict[str, str] = {}
        while loop.time() < deadline:
            p = await unit_props(unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainExitTimestampMonotonic")
            # A transient unit queued with --no-block is "inactive" with Result=success before
            # its job even starts: only an exit timestamp says that it ran and ended.
            ran = p.get("ExecMainExitTimestampMonotonic") not in (None, "", "0")
            if p.get("ActiveState") in ("active", "failed") or (p.get("ActiveState") == "inactive" and ran):
                break
            await asyncio.sleep(0.2)
        status = (
            int(p.get("ExecMainStatus") or -1) if p.get("ActiveState") in ("active", "failed", "inactive") else None
        )
        await run_argv(["systemctl", "stop", "--", unit], timeout=60, cap=cap)
        await run_argv(["systemctl", "reset-failed", "--", unit], timeout=60, cap=cap)
        err = None if status is not None else f"{unit} did not finish within {timeout:.0f}s"
        return RunResult(
            argv,
            status if p.get("Result") in ("success", "exit-code") else None,
            start.stdout,
            f"detached as {unit} (output in its journal); result {p.get('Result')}",
            False,
            0.0,
            err if err else (None if p.get("Result") == "success" else f"{unit} result {p.get('Result')}"),
        )

    async def _dry_run(
        self, conn: psycopg.AsyncConnection, row: dict[str, Any], va: ValidatedAction, now: datetime
    ) -> None:
        argvs = [list(s.argv) for s in va.steps(self.paths)]
        for argv in argvs:
            self.out(
                f"DRY RUN (not NixOS; actions.nix_mode={self.cfg.actions.nix_mode}): action {row['id']} "
                f"would run: {argv!r}"
            )
        await self._move(
            conn,
            row["id"],
            S.APPROVED,
            S.DRY_RUN,
            now,
            "DRY RUN: not NixOS, the argv was printed and not run",
            "action.dry-run",
            {"argv": argvs},
            fields={
                "result": {"mode": "dry-run", "argv": argvs},
                "started_at": now,
                "finished_at": now,
                "executed_by": f"{ACTOR}@{socket.gethostname()}",
            },
        )

    async def _verify_row(
        self, conn: psycopg.AsyncConnection, row: dict[str, Any], *, steps_ok: bool, interrupted: bool = False
    ) -> dict[str, Any]:
        try:
            va = self.catalog.validate(row["action"], row["params"])
        except ProposalRejected as exc:
            return {"passed": False, "checks": [{"check": "catalog action", "passed": False, "observed": str(exc)}]}
        before = (row.get("result") or {}).get("before") or {}
        v = Verifier(self.cfg, started_at=row.get("started_at"), conn=conn, incident_id=row.get("incident_id"))
        try:
            out = await v.check(va, before, steps_ok)
        except Exception as exc:  # a verification that cannot run is a failed one
            log.exception("executor: verification of action %s raised", row["id"])
            out = {
                "passed": False,
                "checks": [{"check": "verification ran", "passed": False, "observed": f"{type(exc).__name__}: {exc}"}],
            }
        if interrupted:
            out["interrupted"] = True
        return out

    async def _trip(self, conn: psycopg.AsyncConnection, row: dict[str, Any], reason: str) -> None:
        target = row.get("target") or row["action"]
        text = f"action {row['id']} ({row['action']}): {reason}"
        await ledger_actions.trip_breaker(conn, target, row["id"], text)
        # The ledger's copy is the one only a person's signed clearing closes.
        await ledger.record(conn, "trip", actor=ACTOR, at=self.clock(), reason=text, target=target, action_id=row["id"])
        await self._audit(conn, self.clock(), "breaker.tripped", row["id"], {"target": target, "reason": reason})
        if row.get("incident_id") is not None:
            await reopen(conn, row["incident_id"], self.clock())
            await self._audit(
                conn, self.clock(), "incident.reopened", row["id"], {"incident": row["incident_id"], "reason": reason}
            )

    # ------------------------------------------------------------------ recording

    @staticmethod
    async def _move(
        conn: psycopg.AsyncConnection,
        action_id: int,
        frm: str,
        to: str,
        at: datetime,
        reason: str,
        event: str,
        detail: dict[str, Any],
        fields: dict[str, Any] | None = None,
    ) -> None:
        await ledger_actions.transition(
            conn,
            action_id,
            frm,
            to,
            actor=ACTOR,
            at=at,
            reason=reason,
            event=event,
            detail={**detail, "reason": reason},
            fields=fields,
        )

    @staticmethod
    async def _audit(
        conn: psycopg.AsyncConnection, at: datetime, event: str, action_id: int, detail: dict[str, Any]
    ) -> None:
        await audit.insert(conn, at, ACTOR, event, ledger_actions.subject(action_id), detail)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
