"""The trigger model: classify log templates never classified before, once each.

* Only candidates are asked about: new templates at PRIORITY warning or worse, or that
  look like errors, and that no signature rule already explains.
* Answers are cached per template id and persisted (atomic JSON file in the state dir),
  so a restart does not ask again.
* Requests are batched (several templates per call, one JSON-schema answer with one
  item per template) and budgeted per minute (a token bucket); templates wait in a
  bounded queue, and overflow is dropped for now and asked about when seen again.
* When the model is down, every queued template is given up for now (asked again when
  seen again, after `retry_after`), the classifier reports itself degraded, and
  deterministic triggers keep flowing; the next answer clears the flag.  A timeout or an
  unusable answer gives up only that batch (a timeout also marks L1 degraded).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ai_sysadmin.durable import write_atomic
from ai_sysadmin.envelope import SYSTEM_RULE, wrap
from ai_sysadmin.llm.accounting import call_context
from ai_sysadmin.llm.errors import BadModelOutput, LLMError, ModelRequestError, ModelTimeout
from ai_sysadmin.sanitize import clean_text
from ai_sysadmin.trigger.model import CATEGORIES, SEVERITIES

log = logging.getLogger(__name__)

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "severity": {"type": "string", "enum": list(SEVERITIES)},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "summary": {"type": "string", "minLength": 1, "maxLength": 100},
    },
    "required": ["severity", "category", "summary"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You triage Linux/NixOS system log lines for a system administrator. For each numbered log template "
    "(<NUM>, <PATH>, <IP>, <HEX>, <*> are placeholders) answer severity "
    "(critical: outage or data loss now; high: a service or hardware failing; medium: degraded, needs a look; "
    "low: minor; info: routine, no action), category, and a one-line summary."
)


def batch_schema(n: int) -> dict[str, Any]:
    if n == 1:
        return ITEM_SCHEMA
    return {
        "type": "object",
        "properties": {"items": {"type": "array", "items": ITEM_SCHEMA, "minItems": n, "maxItems": n}},
        "required": ["items"],
        "additionalProperties": False,
    }


class StructuredModel(Protocol):
    async def structured(
        self,
        messages: list[dict[str, Any]],
        schema: dict[str, Any],
        *,
        name: str = ...,
        max_tokens: int | None = ...,
        temperature: float = ...,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Answer:
    severity: str
    category: str
    summary: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "category": self.category, "summary": self.summary}


@dataclass(frozen=True)
class Request:
    template_id: str
    template: str
    sample: str
    unit: str | None
    priority: int | None


class AnswerCache:
    """template id -> Answer, persisted as one JSON object (rewritten atomically on save)."""

    def __init__(self, path: str | os.PathLike[str] | None):
        self.path = Path(path) if path else None
        self._answers: dict[str, Answer] = {}
        self.dirty = False
        if self.path and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                for tid, a in data.get("answers", {}).items():
                    self._answers[tid] = Answer(a["severity"], a["category"], a["summary"])
            except (ValueError, KeyError, TypeError) as exc:
                # A damaged cache costs model calls, not correctness: start empty, keep the file aside.
                log.warning("model answer cache %s unreadable (%s); starting empty", self.path, exc)
                os.replace(self.path, self.path.with_suffix(".corrupt"))

    def get(self, template_id: str) -> Answer | None:
        return self._answers.get(template_id)

    def put(self, template_id: str, answer: Answer) -> None:
        self._answers[template_id] = answer
        self.dirty = True

    def __len__(self) -> int:
        return len(self._answers)

    def save(self) -> None:
        if not self.path or not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": 1, "answers": {k: v.to_json() for k, v in self._answers.items()}}
        write_atomic(self.path, json.dumps(doc).encode())
        self.dirty = False


class TokenBucket:
    """`per_minute` calls per minute, with bursts up to `burst`."""

    def __init__(self, per_minute: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = per_minute / 60.0
        self.capacity = burst if burst is not None else max(1.0, per_minute / 6)
        self.tokens = self.capacity
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self) -> float:
        self._refill()
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self._refill()
        self.tokens -= 1


AnswerHook = Callable[[str, Answer | None], None]  # (template_id, answer or None on failure)


class Classifier:
    def __init__(
        self,
        model: StructuredModel,
        cache: AnswerCache,
        *,
        calls_per_minute: float = 30.0,
        batch_size: int = 4,
        queue_size: int = 256,
        max_tokens: int = 160,
        retry_after: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.model = model
        self.cache = cache
        self.bucket = TokenBucket(calls_per_minute)
        self.batch_size = max(1, batch_size)
        self.queue_size = queue_size
        self.max_tokens = max_tokens
        self.retry_after = retry_after
        self._clock = clock
        self._resting_until = 0.0  # after a failure: no new requests until then
        self._queue: OrderedDict[str, Request] = OrderedDict()
        self._in_flight: set[str] = set()
        self._wakeup = asyncio.Event()
        self.on_answer: AnswerHook | None = None
        self.degraded = False
        self.last_error: str | None = None
        self.calls = 0
        self.failures = 0
        self.dropped = 0

    # ---------------------------------------------------------------- pipeline side (sync)

    def lookup(self, template_id: str) -> Answer | None:
        return self.cache.get(template_id)

    def pending(self, template_id: str) -> bool:
        return template_id in self._queue or template_id in self._in_flight

    def submit(self, request: Request) -> bool:
        """Queue a template; False when the queue is full (it will be asked about when seen again)."""
        if self.pending(request.template_id) or self.cache.get(request.template_id):
            return True
        if self._clock() < self._resting_until:
            return False  # the model just failed: do not hold entries for it; ask when seen again
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            return False
        self._queue[request.template_id] = request
        self._wakeup.set()
        return True

    @property
    def idle(self) -> bool:
        return not self._queue and not self._in_flight

    # ---------------------------------------------------------------- worker (async)

    async def run(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Serve the queue until cancelled."""
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            delay = self.bucket.wait_time()
            if delay > 0:
                await sleep(delay)
                continue
            await self.step()

    async def step(self) -> int:
        """Send one batch from the queue now (ignoring the budget); returns how many were asked."""
        batch = [self._queue.popitem(last=False)[1] for _ in range(min(self.batch_size, len(self._queue)))]
        if not batch:
            return 0
        self.bucket.take()
        self.calls += 1
        self._in_flight.update(r.template_id for r in batch)
        try:
            answers: list[Answer | None] = list(await self._ask(batch))
        except (BadModelOutput, ModelRequestError, ModelTimeout) as exc:
            # The model is there, but gave nothing usable for this batch (or was too slow):
            # give these templates up for now -- asked again when seen again -- and go on
            # with the queue.  A timeout still marks L1 degraded: the model is overloaded.
            self.failures += 1
            self.last_error = str(exc)
            if isinstance(exc, ModelTimeout):
                self.degraded = True
            log.warning("trigger model gave no usable answer for %d template(s): %s", len(batch), exc)
            answers = [None] * len(batch)
        except LLMError as exc:
            self.failures += 1
            if not self.degraded:
                log.warning("trigger model failed, L1 degraded to deterministic triggers: %s", exc)
            self.degraded = True
            self.last_error = str(exc)
            self._resting_until = self._clock() + self.retry_after
            # Give up the whole queue, not just this batch: holding entries for a model that
            # is down would only delay checkpoints.  They are asked about when seen again.
            batch += [self._queue.popitem(last=False)[1] for _ in range(len(self._queue))]
            answers = [None] * len(batch)
        else:
            if self.degraded:
                log.info("trigger model answers again")
            self.degraded = False
            self.last_error = None
        finally:
            self._in_flight.difference_update(r.template_id for r in batch)
        for req, answer in zip(batch, answers, strict=False):
            if answer is not None:
                self.cache.put(req.template_id, answer)
            if self.on_answer is not None:
                self.on_answer(req.template_id, answer)
        return len(batch)

    async def drain(self) -> None:
        """Ask about everything queued, without the per-minute budget (for replay)."""
        while self._queue:
            await self.step()

    async def _ask(self, batch: list[Request]) -> list[Answer]:
        messages = build_messages(batch)
        with call_context(layer="l1"):
            obj = await self.model.structured(
                messages, batch_schema(len(batch)), name="triage", max_tokens=self.max_tokens * len(batch)
            )
        items = [obj] if len(batch) == 1 else obj["items"]
        return [Answer(it["severity"], it["category"], " ".join(it["summary"].split())[:100] or "-") for it in items]


def build_messages(batch: list[Request]) -> list[dict[str, Any]]:
    """The classification prompt: log text only inside the untrusted-data envelope, sanitised and bounded."""
    lines = []
    for i, r in enumerate(batch, 1):
        where = f" unit={clean_text(r.unit, 120)}" if r.unit else ""
        pri = f" priority={r.priority}" if r.priority is not None else ""
        lines.append(
            f"{i}. template: {clean_text(r.template, 400)}\n   example:{where}{pri} {clean_text(r.sample, 300)}"
        )
    return [
        {"role": "system", "content": f"{SYSTEM_PROMPT} {SYSTEM_RULE}"},
        {"role": "user", "content": wrap("\n".join(lines), "journal", max_chars=600 * len(batch) + 200)},
    ]
