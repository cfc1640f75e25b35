"""The policy's facts from the database: pause, rate counters, cool-downs, breakers.

Shared by the proposer (ActionService) and the executor, which each establish them
themselves from their own connection and their own configuration's limits.

Pauses and breakers are decisions in the ledger (store/ledger.py), folded in the order
they were made: anyone may add caution (pause, trip), but only a signed decision -- a
person's, made with the approval key -- lifts it (resume, a shorter pause, a clearing).
The executor passes a `Verify` that checks each signature with its key; the orchestrator
and `status`, which hold no key, pass none and read signed rows at face value (their view
is advisory; the executor decides again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from ai_sysadmin.actions.catalog import ValidatedAction
from ai_sysadmin.actions.policy import Decision, decide, is_protected
from ai_sysadmin.actions.types import ActionStatus as S
from ai_sysadmin.config import Config
from ai_sysadmin.store import actions as ledger_actions
from ai_sysadmin.store import ledger

# Is this ledger decision validly signed?  None: take a signature's presence at face value.
Verify = Callable[[ledger.Decision], bool]

PAUSE_FOREVER = "indefinitely"
# Rows that count as an action taken (or about to be) on a target, for limits and cool-downs.
TAKEN = (S.APPROVED, S.EXECUTING, S.SUCCEEDED, S.FAILED, S.VERIFIED, S.INTERRUPTED, S.DRY_RUN)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _signed(d: ledger.Decision, verify: Verify | None) -> bool:
    return verify(d) if verify is not None else d.signature is not None


def _when(d: ledger.Decision, signed: bool) -> datetime:
    # A signed decision counts from its signed time, never later than it reached the
    # database: a re-inserted copy of an old resume or clearing ends nothing newer.
    return min(d.at, d.recorded_at) if signed else d.recorded_at


def _in_order(decisions: list[ledger.Decision], verify: Verify | None) -> list[tuple[datetime, ledger.Decision, bool]]:
    """(when, decision, validly signed), in the order the decisions were made."""
    rows = [(d, _signed(d, verify)) for d in decisions]
    return [(_when(d, ok), d, ok) for d, ok in sorted(rows, key=lambda r: (_when(r[0], r[1]), r[0].id))]


def _longer(a: datetime | str | None, b: datetime | str) -> datetime | str:
    if a == PAUSE_FOREVER or b == PAUSE_FOREVER:
        return PAUSE_FOREVER
    return b if a is None else max(a, b)


async def _legacy_pause(conn: psycopg.AsyncConnection) -> datetime | str | None:
    # Written before the ledger (migration 6); still a pause until a signed resume ends it.
    value = await ledger_actions.legacy_pause(conn)
    if value is None:
        return None
    if value == PAUSE_FOREVER:
        return PAUSE_FOREVER
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return PAUSE_FOREVER  # an unreadable pause is still a pause


async def paused_until(
    conn: psycopg.AsyncConnection, now: datetime, verify: Verify | None = None
) -> datetime | str | None:
    """None when not paused; a datetime, or PAUSE_FOREVER."""
    state = await _legacy_pause(conn)
    for _, d, signed in _in_order(await ledger.pause_decisions(conn), verify):
        if d.kind == "resume":
            if signed:
                state = None
        else:
            mine: datetime | str = d.until or PAUSE_FOREVER
            state = mine if signed else _longer(state, mine)  # unsigned: may only lengthen
    if isinstance(state, datetime) and state <= now:
        return None
    return state


async def set_pause(
    conn: psycopg.AsyncConnection,
    until: datetime | None,
    *,
    actor: str = "ai-sysadmin",
    reason: str = "",
    signature: str | None = None,
    at: datetime | None = None,
) -> None:
    """Add a pause (caution: allowed to every role).  Unsigned, it can only lengthen one."""
    at = at or now_utc()
    if await ledger.exists(conn):
        await ledger.record(conn, "pause", actor=actor, at=at, until=until, reason=reason, signature=signature)
        return
    value = until.isoformat() if until else PAUSE_FOREVER  # before the executor ever started
    await ledger_actions.set_legacy_pause(conn, value)


async def open_breakers(
    conn: psycopg.AsyncConnection, verify: Verify | None = None, target: str | None = None
) -> dict[str, dict[str, Any]]:
    """Open breakers by target: a legacy row not cleared, or a ledger trip no signed clearing followed."""
    out: dict[str, dict[str, Any]] = {}
    for t, i, r, at in await ledger_actions.uncleared_breakers(conn, target):
        out[t] = {"target": t, "action_id": i, "reason": r, "tripped_at": at}
    state: dict[str, dict[str, Any] | None] = {}
    for when, d, signed in _in_order(await ledger.breaker_decisions(conn, target), verify):
        if d.kind == "trip":
            state[d.target or ""] = {
                "target": d.target,
                "action_id": d.action_id,
                "reason": d.reason,
                "tripped_at": when,
            }
        elif signed:
            state[d.target or ""] = None
    for t, b in state.items():
        if b is not None:
            out.setdefault(t, b)
    return out


async def open_breaker(
    conn: psycopg.AsyncConnection, target: str, verify: Verify | None = None
) -> dict[str, Any] | None:
    return (await open_breakers(conn, verify, target)).get(target)


@dataclass(frozen=True)
class Facts:
    protected: bool
    paused: bool
    rate_limited: str | None
    cooling_down: str | None
    breaker_open: str | None

    def decide(self, autonomy: str, va: ValidatedAction, unbound: str | None = None) -> Decision:
        return decide(
            autonomy,
            va.risk,
            protected=self.protected,
            paused=self.paused,
            rate_limited=self.rate_limited,
            cooling_down=self.cooling_down,
            breaker_open=self.breaker_open,
            target=va.target,
            unbound=unbound,
        )


async def gather(
    conn: psycopg.AsyncConnection,
    cfg: Config,
    va: ValidatedAction,
    now: datetime,
    exclude_id: int | None = None,
    extra_units: tuple[str, ...] = (),
    verify: Verify | None = None,
) -> Facts:
    """The facts for one validated action, with `cfg`'s limits (its own config)."""
    a = cfg.actions
    units = [u for u in (va.unit, *extra_units) if u]
    protected = any(is_protected(u, cfg.protected_units, a.protected_patterns) for u in units)
    paused = await paused_until(conn, now, verify) is not None
    exclude = exclude_id if exclude_id is not None else -1
    since = now - timedelta(seconds=a.rate_window_seconds)
    per_target, per_action, last = await ledger_actions.recent_counts(
        conn, target=va.target, action=va.id, statuses=TAKEN, since=since, exclude_id=exclude
    )
    rate = None
    if per_target >= a.rate_limit_per_target:
        rate = (
            f"rate limit: {per_target} action(s) on {va.target} in the last {a.rate_window_seconds}s "
            f"(limit {a.rate_limit_per_target})"
        )
    elif per_action >= a.rate_limit_per_action:
        rate = (
            f"rate limit: {per_action} {va.id} action(s) in the last {a.rate_window_seconds}s "
            f"(limit {a.rate_limit_per_action})"
        )
    cooling = None
    if last is not None and a.cooldown_seconds and last > now - timedelta(seconds=a.cooldown_seconds):
        cooling = f"cool-down: last action on {va.target} at {last.isoformat(timespec='seconds')}"
    breaker = await open_breaker(conn, va.target, verify)
    return Facts(
        protected=protected,
        paused=paused,
        rate_limited=rate,
        cooling_down=cooling,
        breaker_open=(
            f"breaker open on {va.target} since {breaker['tripped_at'].isoformat(timespec='seconds')}"
            f" ({breaker['reason']}); a person must clear it"
        )
        if breaker
        else None,
    )


async def policy_state(conn: psycopg.AsyncConnection, cfg: Config, now: datetime) -> dict[str, Any]:
    """Pause, breakers, cool-downs and rate counters, for the L2 context and `status`."""
    a = cfg.actions
    until = await paused_until(conn, now)
    breakers = [{**b, "tripped_at": b["tripped_at"].isoformat()} for b in (await open_breakers(conn)).values()]
    since = now - timedelta(seconds=a.rate_window_seconds)
    targets = []
    for target, n, last in await ledger_actions.recent_targets(conn, TAKEN, since):
        cool_until = last + timedelta(seconds=a.cooldown_seconds)
        targets.append(
            {
                "target": target,
                "actions_in_window": n,
                "limit": a.rate_limit_per_target,
                "last_action_at": last.isoformat(),
                "cooling_down_until": cool_until.isoformat() if cool_until > now else None,
            }
        )
    queued = await ledger_actions.count_queued(conn)
    return {
        "autonomy_level": cfg.autonomy_level,
        "paused_until": (until if isinstance(until, str) else until.isoformat()) if until else None,
        "breakers": breakers,
        "targets": targets,
        "rate_window_seconds": a.rate_window_seconds,
        "cooldown_seconds": a.cooldown_seconds,
        "queued": queued,
    }
