"""LLM call accounting: the `on_call` hook of every LLMClient, written in batches.

The hook is synchronous and must never slow a model call, so it only queues the
record; a task writes queued records as one batch (spooled like metrics in an
outage, and dropped -- counted -- only if the queue overflows).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from ai_sysadmin.llm import CallRecord
from ai_sysadmin.store.spool import Batch
from ai_sysadmin.store.writer import StoreWriter
from ai_sysadmin.tasks import stop_tasks

log = logging.getLogger(__name__)


class LLMCallRecorder:
    def __init__(self, writer: StoreWriter, *, max_queue: int = 10_000, batch_max: int = 200):
        self._writer = writer
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=max_queue)
        self._batch_max = batch_max
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def __call__(self, rec: CallRecord) -> None:
        """LLMClient(on_call=recorder): queue only, never block or raise."""
        row = {
            "at": datetime.now(UTC).isoformat(),
            "role": rec.role,
            "model": rec.model,
            "kind": rec.kind,
            "prompt_tokens": rec.prompt_tokens,
            "completion_tokens": rec.completion_tokens,
            "latency_s": rec.latency_s,
            "outcome": rec.outcome,
            "layer": rec.layer,
            "incident_id": rec.incident_id,
        }
        try:
            self._queue.put_nowait(row)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("LLM call accounting queue full; %d record(s) dropped", self.dropped)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="llm-call-recorder")

    async def drain(self) -> None:
        """Return once everything queued so far is written (or spooled)."""
        if self._task is not None and not self._task.done():
            await self._queue.join()
        while not self._queue.empty():
            await self._write_some()

    async def aclose(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None
        await self.drain()

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()  # sleep until there is something to write
            await self._write_some(first)

    async def _write_some(self, first: dict[str, Any] | None = None) -> None:
        calls = [first] if first is not None else []
        while len(calls) < self._batch_max and not self._queue.empty():
            calls.append(self._queue.get_nowait())
        if calls:
            try:
                await self._writer.submit(Batch("llm_calls", {"calls": calls}))
            except Exception:
                log.exception("cannot record %d LLM call(s)", len(calls))
            finally:
                for _ in calls:
                    self._queue.task_done()

    @staticmethod
    async def totals(writer: StoreWriter, since: datetime) -> list[tuple[str, str, int, int, int, float]]:
        """(role, outcome, calls, prompt_tokens, completion_tokens, latency_s sum) since `since`."""
        async with writer.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT role, outcome, count(*), sum(prompt_tokens), sum(completion_tokens), sum(latency_s) "
                "FROM llm_calls WHERE at >= %s GROUP BY role, outcome ORDER BY role, outcome",
                (since,),
            )
            return [tuple(r) for r in await cur.fetchall()]

    @staticmethod
    async def by_layer(writer: StoreWriter, since: datetime) -> list[tuple[str | None, str, int, int, int]]:
        """(layer, kind, calls, prompt_tokens, completion_tokens) since `since`: what each layer costs."""
        async with writer.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT layer, kind, count(*), sum(prompt_tokens), sum(completion_tokens) FROM llm_calls "
                "WHERE at >= %s GROUP BY layer, kind ORDER BY layer NULLS LAST, kind",
                (since,),
            )
            return [tuple(r) for r in await cur.fetchall()]
