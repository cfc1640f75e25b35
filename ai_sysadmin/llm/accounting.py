"""Which layer (and incident) a model call serves, for exact per-layer accounting.

Layers wrap their model calls in `call_context(layer=..., incident_id=...)`; the
client reads the context when it records a call, so no call site has to thread the
tags through every function.  A contextvar follows asyncio tasks correctly.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class CallContext:
    layer: str | None = None  # l1 | review | meta | api | doctor | knowledge | ...
    incident_id: int | None = None


# CallContext is frozen, so one shared default instance cannot be changed through the var.
_current: contextvars.ContextVar[CallContext] = contextvars.ContextVar("ai_sysadmin_llm_call", default=CallContext())  # noqa: B039


def current() -> CallContext:
    return _current.get()


@contextlib.contextmanager
def call_context(layer: str | None = None, incident_id: int | None = None) -> Iterator[CallContext]:
    """Tag every model call made inside this block (and tasks started in it)."""
    ctx = CallContext(
        layer=layer if layer is not None else _current.get().layer,
        incident_id=incident_id if incident_id is not None else _current.get().incident_id,
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)
