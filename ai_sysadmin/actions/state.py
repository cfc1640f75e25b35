"""The policy's facts from the database: pause, rate counters, cool-downs, breakers.

Shared by the proposer (ActionService) and the executor, which each establish them
themselves from their own connection and their own configuration's limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg

from ai_sysadmin.actions.catalog import ValidatedAction
from ai_sysadmin.actions.policy import Decision, decide, is_protected
from ai_sysadmin.config import Config

PAUSE_KEY = "actions.paused_until"
PAUSE_FOREVER = "indefinitely"
# Rows that count as an action taken (or about to be) on a target, for limits and cool-downs.
TAKEN = ("approved", "executing", "succeeded", "failed", "verified", "interrupted", "dry-run")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


async def paused_until(conn: psycopg.AsyncConnection, now: datetime) -> datetime | str | None:
    """None when not paused; a datetime, or PAUSE_FOREVER."""
    cur = await conn.execute("SELECT value FROM store_settings WHERE key = %s", (PAUSE_KEY,))
    row = await cur.fetchone()
    if row is None:
        return None
    if row[0] == PAUSE_FOREVER:
        return PAUSE_FOREVER
    try:
        until = datetime.fromisoformat(row[0])
    except ValueError:
        return PAUSE_FOREVER  # an unreadable pause is still a pause
    return until if until > now else None


async def set_pause(conn: psycopg.AsyncConnection, until: datetime | None) -> None:
    value = until.isoformat() if until else PAUSE_FOREVER
    await conn.execute("INSERT INTO store_settings (key, value) VALUES (%s, %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (PAUSE_KEY, value))


async def clear_pause(conn: psycopg.AsyncConnection) -> bool:
    cur = await conn.execute("DELETE FROM store_settings WHERE key = %s", (PAUSE_KEY,))
    return cur.rowcount > 0


async def open_breaker(conn: psycopg.AsyncConnection, target: str) -> dict[str, Any] | None:
    cur = await conn.execute("SELECT id, action_id, reason, tripped_at FROM action_breakers "
                             "WHERE target = %s AND cleared_at IS NULL", (target,))
    row = await cur.fetchone()
    return None if row is None else {"id": row[0], "action_id": row[1], "reason": row[2], "tripped_at": row[3]}


@dataclass(frozen=True)
class Facts:
    protected: bool
    paused: bool
    rate_limited: str | None
    cooling_down: str | None
    breaker_open: str | None

    def decide(self, autonomy: str, va: ValidatedAction, unbound: str | None = None) -> Decision:
        return decide(autonomy, va.risk, protected=self.protected, paused=self.paused,
                      rate_limited=self.rate_limited, cooling_down=self.cooling_down,
                      breaker_open=self.breaker_open, target=va.target, unbound=unbound)


async def gather(conn: psycopg.AsyncConnection, cfg: Config, va: ValidatedAction, now: datetime,
                 exclude_id: int | None = None, extra_units: tuple[str, ...] = ()) -> Facts:
    """The facts for one validated action, with `cfg`'s limits (its own config)."""
    a = cfg.actions
    units = [u for u in (va.unit, *extra_units) if u]
    protected = any(is_protected(u, cfg.protected_units, a.protected_patterns) for u in units)
    paused = await paused_until(conn, now) is not None
    exclude = exclude_id if exclude_id is not None else -1
    since = now - timedelta(seconds=a.rate_window_seconds)
    cur = await conn.execute(
        "SELECT count(*) FILTER (WHERE target = %s), count(*) FILTER (WHERE action = %s), "
        "max(coalesce(started_at, updated_at)) FILTER (WHERE target = %s) "
        "FROM actions WHERE status = ANY(%s) AND coalesce(started_at, updated_at) > %s AND id <> %s",
        (va.target, va.id, va.target, list(TAKEN), since, exclude))
    per_target, per_action, last = await cur.fetchone()  # type: ignore[misc]
    rate = None
    if per_target >= a.rate_limit_per_target:
        rate = (f"rate limit: {per_target} action(s) on {va.target} in the last {a.rate_window_seconds}s "
                f"(limit {a.rate_limit_per_target})")
    elif per_action >= a.rate_limit_per_action:
        rate = (f"rate limit: {per_action} {va.id} action(s) in the last {a.rate_window_seconds}s "
                f"(limit {a.rate_limit_per_action})")
    cooling = None
    if last is not None and a.cooldown_seconds and last > now - timedelta(seconds=a.cooldown_seconds):
        cooling = f"cool-down: last action on {va.target} at {last.isoformat(timespec='seconds')}"
    breaker = await open_breaker(conn, va.target)
    return Facts(protected=protected, paused=paused, rate_limited=rate, cooling_down=cooling,
                 breaker_open=(f"breaker open on {va.target} since {breaker['tripped_at'].isoformat(timespec='seconds')}"
                               f" ({breaker['reason']}); a person must clear it") if breaker else None)


async def policy_state(conn: psycopg.AsyncConnection, cfg: Config, now: datetime) -> dict[str, Any]:
    """Pause, breakers, cool-downs and rate counters, for the L2 context and `status`."""
    a = cfg.actions
    until = await paused_until(conn, now)
    cur = await conn.execute("SELECT target, action_id, reason, tripped_at FROM action_breakers "
                             "WHERE cleared_at IS NULL ORDER BY tripped_at")
    breakers = [{"target": t, "action_id": i, "reason": r, "tripped_at": at.isoformat()}
                for t, i, r, at in await cur.fetchall()]
    since = now - timedelta(seconds=a.rate_window_seconds)
    cur = await conn.execute(
        "SELECT target, count(*), max(coalesce(started_at, updated_at)) FROM actions "
        "WHERE status = ANY(%s) AND coalesce(started_at, updated_at) > %s AND target IS NOT NULL "
        "GROUP BY target ORDER BY target", (list(TAKEN), since))
    targets = []
    for target, n, last in await cur.fetchall():
        cool_until = last + timedelta(seconds=a.cooldown_seconds)
        targets.append({"target": target, "actions_in_window": n, "limit": a.rate_limit_per_target,
                        "last_action_at": last.isoformat(),
                        "cooling_down_until": cool_until.isoformat() if cool_until > now else None})
    cur = await conn.execute("SELECT count(*) FROM actions WHERE status = 'queued'")
    queued = (await cur.fetchone())[0]  # type: ignore[index]
    return {
        "autonomy_level": cfg.autonomy_level,
        "paused_until": (until if isinstance(until, str) else until.isoformat()) if until else None,
        "breakers": breakers,
        "targets": targets,
        "rate_window_seconds": a.rate_window_seconds,
        "cooldown_seconds": a.cooldown_seconds,
        "queued": queued,
    }
