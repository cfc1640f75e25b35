"""Seams other layers plug into the incident lifecycle.

`OnResolved` is called once for every incident that resolves (by itself or by a person
through the service), with the incident as a plain dict (`Incident.to_json()` plus
`id`): L4 embeds resolved incidents into the knowledge base with it.  A hook failure
is logged and never stops correlation.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol


class OnResolved(Protocol):
    def __call__(self, incident: dict[str, Any]) -> Awaitable[None]: ...
