"""Write batches to PostgreSQL, or to the outage spool while it is unreachable.

Order is kept: once anything is spooled, every later batch is spooled too until the
flusher has drained the spool, so a journal cursor in the database never moves back.
Each batch is applied in a transaction that first records its id in `ingest_batches`;
a replay (the commit's answer was lost with the connection, or the process died
between commit and deleting the spool segment) finds the id and skips: exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Awaitable, Callable, Mapping

import psycopg
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.store.batches import Applier
from ai_sysadmin.store.db import is_unreachable
from ai_sysadmin.store.spool import Batch, Spool

log = logging.getLogger(__name__)

STORED, SPOOLED, DROPPED = "stored", "spooled", "dropped"


class StoreWriter:
    def __init__(self, pool: AsyncConnectionPool, spool: Spool, appliers: Mapping[str, Applier], *,
                 retry_interval: float = 2.0, flush_chunk: int = 200,
                 prepare: Callable[[AsyncConnectionPool], Awaitable[object]] | None = None):
        self.pool = pool
        # Runs (once, successfully) before the first write: the schema migration, so a
        # service started during an outage migrates before it flushes.
        self._prepare = prepare
        self._prepared = prepare is None
        self.spool = spool
        self._appliers = dict(appliers)
        self._retry = retry_interval
        self._chunk = flush_chunk
        self._order = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.reachable = True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the background flusher (drains an existing spool at once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._flush_loop(), name="spool-flusher")
            self._wake.set()

    async def aclose(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # ------------------------------------------------------------------ writing

    async def submit(self, batch: Batch) -> str:
        """Store `batch` now, or spool it durably; 'stored' | 'spooled' | 'dropped'."""
        if batch.kind not in self._appliers:
            raise ValueError(f"unknown batch kind {batch.kind!r}")
        if not self.spool.empty():
            return await self._to_spool(batch)
        async with self._order:
            if not self.spool.empty():
                return await self._to_spool(batch)
            try:
                await self.ensure_prepared()
                await self._apply([batch])
                return STORED
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                self._mark_unreachable(exc)
                return await self._to_spool(batch)

    async def _to_spool(self, batch: Batch) -> str:
        kept = await asyncio.to_thread(self.spool.append, batch)
        self._wake.set()
        return SPOOLED if kept else DROPPED

    def _mark_unreachable(self, exc: BaseException) -> None:
        if self.reachable:
            log.warning("PostgreSQL unreachable (%s); spooling to %s until it returns",
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__,
                        self.spool.dir)
        self.reachable = False

    async def ensure_prepared(self) -> None:
        if not self._prepared and self._prepare is not None:
            await self._prepare(self.pool)
            self._prepared = True

    async def _apply(self, batches: list[Batch]) -> int:
        """Apply in one transaction; returns how many were new (not replays)."""
        fresh = 0
        async with self.pool.connection() as conn:
            async with conn.transaction():
                for b in batches:
                    cur = await conn.execute(
                        "INSERT INTO ingest_batches (batch_id, kind) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                        (b.batch_id, b.kind))
                    if cur.rowcount == 0:
                        log.info("batch %s (%s) was already applied; skipped", b.batch_id, b.kind)
                        continue
                    await self._appliers[b.kind](conn, b.payload)
                    fresh += 1
        self.reachable = True
        await self._mirror_cursors(batches)
        return fresh

    async def _mirror_cursors(self, batches: list[Batch]) -> None:
        latest: dict[str, str] = {}
        for b in batches:
            if b.kind == "triggers" and b.payload.get("cursor") is not None:
                latest[b.payload.get("stream", "journal")] = b.payload["cursor"]
        for stream, cursor in latest.items():
            await asyncio.to_thread(self.spool.save_cursor, stream, cursor)

    # ------------------------------------------------------------------ flushing

    async def flush(self) -> int:
        """Drain the spool in order; returns batches flushed.  Stops quietly when unreachable."""
        flushed = 0
        while True:
            async with self._order:
                seg = await asyncio.to_thread(self.spool.oldest)
                if seg is None:
                    if flushed:
                        log.info("outage spool drained (%d batches flushed); writing directly again", flushed)
                    return flushed
                batches = await asyncio.to_thread(self.spool.read, seg)
                try:
                    await self.ensure_prepared()
                    for i in range(0, len(batches), self._chunk):
                        await self._apply_or_quarantine(batches[i:i + self._chunk])
                except Exception as exc:
                    if not is_unreachable(exc):
                        raise
                    self._mark_unreachable(exc)
                    return flushed
                await asyncio.to_thread(self.spool.remove, seg)
                flushed += len(batches)

    async def _apply_or_quarantine(self, batches: list[Batch]) -> None:
        """A batch PostgreSQL refuses would block the spool forever: set it aside, named."""
        try:
            await self._apply(batches)
            return
        except Exception as exc:
            if is_unreachable(exc):
                raise
        for b in batches:  # find the culprit(s) one by one
            try:
                await self._apply([b])
            except Exception as exc:
                if is_unreachable(exc):
                    raise
                where = await asyncio.to_thread(self.spool.quarantine, b, str(exc))
                log.error("PostgreSQL refused spooled %s batch %s (%s); kept in %s for inspection",
                          b.kind, b.batch_id, str(exc).strip().splitlines()[0], where)

    async def _flush_loop(self) -> None:
        while not self._stopping:
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that
                # races with the event being set, and aclose() would then wait forever.
                async with asyncio.timeout(self._retry):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            if self.spool.empty():
                continue
            try:
                await self.flush()
            except psycopg.Error:
                pass  # logged in flush; retried on the next round
            except Exception:
                log.exception("spool flush failed; retrying in %.0fs", self._retry)
            if not self.spool.empty():
                if self.reachable:
                    self._wake.set()  # more arrived while flushing: go on
                else:
                    # Still unreachable: wait a full interval instead of spinning on every append.
                    await asyncio.sleep(self._retry)
