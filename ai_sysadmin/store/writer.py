"""Write batches to PostgreSQL, or to the outage spool while it is unreachable.

Order is kept: once anything is spooled, every later batch is spooled too until the
flusher has drained the spool, so a journal cursor in the database never moves back.
Each batch is applied in a transaction that first records its id in `ingest_batches`;
a replay (the commit's answer was lost with the connection, or the process died
between commit and deleting the spool segment) finds the id and skips: exactly once.

A batch the database refuses (a constraint, a value it cannot take -- text is
sanitised before, so this is the exception) must neither stop L1 nor block the spool:
it is applied again record by record in savepoints, in one transaction; refused
records go to the quarantine (store.quarantine) with the reason, the rest and the
journal cursor are committed.  The same path serves direct writes and spool flushes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import psycopg
from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.store.batches import Applier, CarefulApplier, is_refusal
from ai_sysadmin.store.db import is_unreachable
from ai_sysadmin.store.quarantine import Quarantine
from ai_sysadmin.store.spool import Batch, Spool
from ai_sysadmin.tasks import stop_tasks

log = logging.getLogger(__name__)

STORED, SPOOLED, DROPPED = "stored", "spooled", "dropped"


class StoreWriter:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        spool: Spool,
        appliers: Mapping[str, Applier],
        *,
        quarantine: Quarantine,
        careful: Mapping[str, CarefulApplier] | None = None,
        retry_interval: float = 2.0,
        flush_chunk: int = 200,
        prepare: Callable[[AsyncConnectionPool], Awaitable[object]] | None = None,
    ):
        self.pool = pool
        self.quarantine = quarantine
        self._careful = dict(careful or {})
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
            await stop_tasks(self._task)
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
                await self._apply_or_quarantine([batch], strict=True)
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
            log.warning(
                "PostgreSQL unreachable (%s); spooling to %s until it returns",
                str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__,
                self.spool.dir,
            )
        self.reachable = False

    async def ensure_prepared(self) -> None:
        if not self._prepared and self._prepare is not None:
            await self._prepare(self.pool)
            self._prepared = True

    async def _apply(self, batches: list[Batch]) -> int:
        """Apply in one transaction; returns how many were new (not replays)."""
        fresh = 0
        after = []
        async with self.pool.connection() as conn, conn.transaction():
            for b in batches:
                if not await self._claim(conn, b):
                    continue
                done = await self._appliers[b.kind](conn, b.payload)
                if done is not None:
                    after.append(done)
                fresh += 1
        self._committed(batches, after)
        await self._mirror_cursors(batches)
        return fresh

    async def _claim(self, conn, b: Batch) -> bool:  # type: ignore[no-untyped-def]
        cur = await conn.execute(
            "INSERT INTO ingest_batches (batch_id, kind) VALUES (%s, %s) ON CONFLICT DO NOTHING", (b.batch_id, b.kind)
        )
        if cur.rowcount == 0:
            log.info("batch %s (%s) was already applied; skipped", b.batch_id, b.kind)
            return False
        return True

    def _committed(self, batches: list[Batch], after: list) -> None:  # type: ignore[type-arg]
        self.reachable = True
        for done in after:
            done()

    async def _apply_carefully(self, b: Batch) -> None:
        """One transaction, one savepoint per record; refused records are quarantined (before commit)."""
        refused: list[tuple[str, object, str]] = []
        after = []
        async with self.pool.connection() as conn, conn.transaction():
            if not await self._claim(conn, b):
                return
            careful = self._careful.get(b.kind)
            if careful is not None:
                done = await careful(conn, b.payload, lambda kind, rec, why: refused.append((kind, rec, why)))
            else:
                try:
                    async with conn.transaction():
                        done = await self._appliers[b.kind](conn, b.payload)
                except Exception as exc:
                    if is_unreachable(exc) or not is_refusal(exc):
                        raise
                    refused.append((b.kind, b.payload, f"{type(exc).__name__}: {exc}"))
                    done = None
            if done is not None:
                after.append(done)
            # Kept before the commit: a crash in between quarantines a record twice, never loses it.
            for kind, rec, why in refused:
                await asyncio.to_thread(self.quarantine.put, kind, rec, why, batch_id=b.batch_id)
        self._committed([b], after)
        await self._mirror_cursors([b])

    async def _mirror_cursors(self, batches: list[Batch]) -> None:
        latest: dict[str, tuple[str, int | None]] = {}
        for b in batches:
            if b.kind == "triggers" and b.payload.get("cursor") is not None:
                latest[b.payload.get("stream", "journal")] = (b.payload["cursor"], b.payload.get("checkpoint"))
        for stream, (cursor, checkpoint) in latest.items():
            await asyncio.to_thread(self.spool.save_cursor, stream, cursor, checkpoint)

    # ------------------------------------------------------------------ flushing

    async def flush(self) -> int:
        """Drain the spool in order; returns batches flushed.  Stops quietly when unreachable."""
        flushed = 0
        while True:
            async with self._order:
                seg = await asyncio.to_thread(self.spool.oldest)
                if seg is None:
                    try:
                        flushed += await self._flush_pending_cursors()
                    except Exception as exc:
                        if not is_unreachable(exc):
                            raise
                        self._mark_unreachable(exc)
                        return flushed
                    if flushed:
                        log.info("outage spool drained (%d batches flushed); writing directly again", flushed)
                    return flushed
                batches = await asyncio.to_thread(self.spool.read, seg)
                try:
                    await self.ensure_prepared()
                    for i in range(0, len(batches), self._chunk):
                        await self._apply_or_quarantine(batches[i : i + self._chunk])
                except Exception as exc:
                    if not is_unreachable(exc):
                        raise
                    self._mark_unreachable(exc)
                    return flushed
                await asyncio.to_thread(self.spool.remove, seg)
                flushed += len(batches)

    async def _apply_or_quarantine(self, batches: list[Batch], *, strict: bool = False) -> None:
        """Apply; a batch PostgreSQL refuses is applied record by record, refused records quarantined.

        `strict` (direct writes): an error that is not a refusal of the data (a bug, a
        missing grant) is raised.  Flushing the spool sets even those aside, named: one
        bad batch must not block every later one forever.
        """
        try:
            await self._apply(batches)
            return
        except Exception as exc:
            if is_unreachable(exc) or (strict and not is_refusal(exc)):
                raise
        for b in batches:  # find the culprit(s) one by one
            try:
                await self._apply([b])
                continue
            except Exception as exc:
                if is_unreachable(exc) or (strict and not is_refusal(exc)):
                    raise
                first = exc
            try:
                await self._apply_carefully(b)
                continue
            except Exception as exc:
                if is_unreachable(exc) or (strict and not is_refusal(exc)):
                    raise
                first = exc
            # Even record by record it fails: keep the whole batch aside, and let a journal
            # cursor it carried move on (its triggers are in the quarantine, named).
            await asyncio.to_thread(
                self.quarantine.put, b.kind, b.payload, f"{type(first).__name__}: {first}", batch_id=b.batch_id
            )
            if b.kind == "triggers" and b.payload.get("cursor") is not None:
                await self._apply([Batch("triggers", {**b.payload, "triggers": []})])

    async def _flush_pending_cursors(self) -> int:
        """The coalesced cursor-only batches go last: every batch they follow is committed."""
        pending = self.spool.pending_cursors()
        for b in pending:
            await self.ensure_prepared()
            await self._apply_or_quarantine([b])
            await asyncio.to_thread(self.spool.remove_pending, b)
        return len(pending)

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
