"""Is a silent model server working on the request, or gone?

Before its first token a model server legitimately says nothing for a long time: on a
2-core CPU a 7,000-token prompt takes over a minute to process, and a request waits
while all slots are busy.  A fixed first-token deadline would either cut such prompts
off or leave a stopped server (SIGSTOP, a process stuck in shutdown) holding the chat
for the whole read timeout.  So silence is checked, not timed out:

* llama-server, asked with `return_progress`, streams a progress chunk after each
  batch of prompt tokens; callers count those as signs of life (and never show them);
* when nothing at all arrived for the idle limit (before the response headers, between
  progress chunks -- one batch of 2,048 tokens can itself take longer -- or for a whole
  non-streamed answer), the server's `/health` is asked.  llama-server answers it from
  its HTTP threads even while its decode loop is busy, so an answer means "working, keep
  waiting" and the silence clock restarts; no answer within `probe_timeout` (stopped,
  dead, shutting down) means the server is gone and the call fails at once.

The same holds once tokens flow: on a server with several slots, one request's tokens
pause while another's prompt batch is processed (tens of seconds on a small CPU), so
silence between tokens is probed too.  The overall limits (the read timeout, the role's
timeout) still bound a server that stays healthy but never answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# The wait for /health's answer: the idle limit, kept between these bounds -- generous
# against a loaded host (the answer needs a few milliseconds of CPU), short against the
# idle limits it follows.
PROBE_TIMEOUT_MIN = 1.0
PROBE_TIMEOUT_MAX = 5.0

# None: the server answered (alive); else why it is taken for gone.
Probe = Callable[[], Awaitable[str | None]]


class Silent(Exception):
    """Nothing for `seconds`, and the server's health probe failed with `why`."""

    def __init__(self, seconds: float, why: str):
        super().__init__(f"nothing for {seconds:g}s and {why}")
        self.seconds = seconds
        self.why = why


def probe_timeout(idle: float) -> float:
    return min(max(idle, PROBE_TIMEOUT_MIN), PROBE_TIMEOUT_MAX)


def health_verdict(status: int | None, error: str | None, timeout: float) -> str | None:
    """What one /health answer says: None (alive) or why the server is taken for gone.

    Any HTTP answer but a 5xx proves a working process (a server without /health answers
    404); 503 means llama-server restarted and is loading -- the request is lost."""
    if status is None:
        return (
            f"its /health did not answer within {timeout:g}s ({error})"
            if error
            else f"its /health did not answer within {timeout:g}s"
        )
    if status >= 500:
        return f"its /health answered HTTP {status}"
    return None


async def watched(aw: Awaitable[T], idle: float, probe: Probe) -> T:
    """`aw`'s result; each `idle` seconds without it the server is probed, and Silent raised if gone.

    `aw` runs as its own task and is cancelled when the server is gone or the caller is."""
    task = asyncio.ensure_future(aw)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=idle)
            if done:
                return task.result()
            why = await probe()
            if why is not None:
                raise Silent(idle, why)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            # The caller may be cancelled (a client that went away) just as `aw` ended, e.g. with
            # the stream's StopAsyncIteration: read the outcome so asyncio does not log it as lost.
            task.exception()
