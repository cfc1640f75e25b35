"""Per-key concurrency: a client holds at most N requests in flight; the next one gets 429.

A model server has few slots; one script opening fifty streams must not starve the
admin's chat.  The count is per key name (per client address when no keys are
configured).  Refusing at once with `Retry-After` is better than queueing: the client
knows, a refused request costs nothing (the auth middleware takes the slot before the
body is read), and a slot freed by a finished stream is free again immediately.

Two limiters run side by side (api/access.py `Pool`): the model endpoints
(`api.max_concurrent_per_key`) and every other endpoint (`api.max_concurrent_rest_per_key`),
so a dashboard polling status does not eat the chat's slots, nor the reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ai_sysadmin.api.errors import ApiError

RETRY_AFTER_SECONDS = 1


class ConcurrencyLimiter:
    def __init__(self, per_key: int, setting: str = "api.max_concurrent_per_key"):
        self.per_key = per_key
        self.setting = setting  # named in the 429 message
        self._in_flight: dict[str, int] = {}

    def in_flight(self, who: str) -> int:
        return self._in_flight.get(who, 0)

    @contextlib.contextmanager
    def hold(self, who: str) -> Iterator[None]:
        # Single-threaded event loop: check and increment cannot interleave.
        current = self._in_flight.get(who, 0)
        if current >= self.per_key:
            raise ApiError(
                429,
                f"too many concurrent requests for {who!r}: {current} in flight, limit {self.per_key} ({self.setting})",
                code="concurrency_limit",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._in_flight[who] = current + 1
        try:
            yield
        finally:
            left = self._in_flight[who] - 1
            if left:
                self._in_flight[who] = left
            else:
                del self._in_flight[who]
