"""The composition root of `ai-sysadmin executor`: the executor, until SIGTERM/SIGINT (or once).

The executor owns its two database connections itself (LISTEN and work, reconnected
on loss; actions/executor.py): it needs no pool, no model and no knowledge base.
"""

from __future__ import annotations

from ai_sysadmin.compose.signals import stop_on_signals
from ai_sysadmin.config import Config


async def run_executor(cfg: Config, *, once: bool = False) -> int:
    from ai_sysadmin.actions.executor import Executor

    return await Executor(cfg).run(stop_on_signals(), once=once)
