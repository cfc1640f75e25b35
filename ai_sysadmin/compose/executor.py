"""The composition root of `ai-sysadmin executor`: the executor, until SIGTERM/SIGINT (or once).

The executor owns its two database connections itself (LISTEN and work, reconnected
on loss; actions/executor.py): it needs no pool, no model and no knowledge base.  On a
fleet member with `fleet.hub_dsn` it runs the actions addressed to its host from the
hub's database (compose/member.py).
"""

from __future__ import annotations

from ai_sysadmin.compose.signals import stop_on_signals
from ai_sysadmin.config import Config


async def run_executor(cfg: Config, *, once: bool = False) -> int:
    from ai_sysadmin.actions.executor import Executor
    from ai_sysadmin.compose.member import hub_seat

    return await Executor(cfg, seat=hub_seat(cfg)).run(stop_on_signals(), once=once)
