"""The L4 tool catalog: read-only investigation tools and the one proposing tool.

    tools = build_toolset(cfg, pool=pool, kb=kb, proposer=proposer)          # facts from this machine
    tools = build_toolset(cfg, host=SnapshotHost(...), kb=shelf, proposer=dry)  # eval: from a snapshot
    tools.definitions()                      # OpenAI `tools` list for the model
    result = await tools.call("unit_status", {"unit": "nginx.service"})

`call` never raises: unknown tools, invalid arguments (the field is named), timeouts
and failures come back as a `ToolResult` with `ok=False`, which the loop hands to
the model like any other result.  Output is cut to the budget with a note.  No tool
runs a command that changes the host; `propose_action` only proposes through the
Proposer (the policy decides).  What the read tools report comes from a `HostFacts`
(meta.tools.facts): the live host by default, a scenario's snapshot in `ai-sysadmin eval`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from ai_sysadmin.actions.types import Proposer
from ai_sysadmin.config import Config
from ai_sysadmin.meta.tools.base import ParamError, Tool, ToolError, ToolOutput, ToolResult
from ai_sysadmin.meta.tools.budget import budget_chars, fit
from ai_sysadmin.meta.tools.facts import HostFacts
from ai_sysadmin.meta.tools.proposals import collect_proposals, record_proposal
from ai_sysadmin.meta.tools.runner import Runner
from ai_sysadmin.store.knowledge import KnowledgeSearch

log = logging.getLogger(__name__)

__all__ = [
    "TOOL_MODULES",
    "HostFacts",
    "Tool",
    "ToolContext",
    "ToolResult",
    "Toolset",
    "build_toolset",
    "collect_proposals",
    "record_proposal",
]

# One concept per module; each has `tools(ctx) -> list[Tool]`.
TOOL_MODULES = (
    "journal",
    "unit_status",
    "failed_units",
    "unit_deps",
    "metrics",
    "disk",
    "processes",
    "generations",
    "knowledge",
    "incidents",
    "templates",
    "propose",
)


@dataclass
class ToolContext:
    """The parts tools read from; a tool whose part is None says so when called."""

    cfg: Config
    runner: Runner
    host: HostFacts  # where the read tools' facts come from (live.LiveHost, or eval's SnapshotHost)
    pool: AsyncConnectionPool | None = None
    kb: KnowledgeSearch | None = None
    proposer: Proposer | None = None


class Toolset:
    def __init__(self, tools: Iterable[Tool], *, max_chars: int, timeout: float, context: ToolContext | None = None):
        self._tools = {t.name: t for t in tools}
        self.max_chars = max_chars
        self.timeout = timeout
        self.context = context

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def definitions(self) -> list[dict[str, Any]]:
        return [t.definition() for t in self._tools.values()]

    def catalog(self) -> list[dict[str, Any]]:
        """What `ai-sysadmin tools list` prints."""
        return [
            {"name": t.name, "kind": t.kind, "description": t.description, "parameters": t.parameters}
            for t in self._tools.values()
        ]

    async def call(self, name: str, arguments: Any) -> ToolResult:
        started = time.monotonic()
        tool = self._tools.get(name)
        if tool is None:
            known = ", ".join(self._tools)
            return self._fail(name, f"unknown tool {name!r}; available tools: {known}", started)
        try:
            args = tool.validate(arguments)
        except ParamError as exc:
            return self._fail(name, f"{exc}. Fix that argument and call again.", started)
        try:
            out: ToolOutput = await asyncio.wait_for(tool.handler(args), self.timeout)
        except TimeoutError:
            return self._fail(name, f"timed out after {self.timeout:g}s; {tool.narrow_hint}", started)
        except ToolError as exc:
            return self._fail(name, str(exc), started)
        except Exception as exc:  # a tool bug must not end the investigation
            log.exception("tool %s failed", name)
            return self._fail(name, f"internal error ({exc.__class__.__name__}); try another tool", started)
        text, cut = fit(out.text, self.max_chars, tool.narrow_hint)
        summary = out.summary or _first_line(out.text)
        return ToolResult(
            name=name,
            ok=True,
            text=text,
            summary=summary + (" (cut)" if cut else ""),
            truncated=cut,
            data=out.data,
            latency_s=time.monotonic() - started,
        )

    def _fail(self, name: str, message: str, started: float) -> ToolResult:
        return ToolResult(
            name=name,
            ok=False,
            text=f"error: {message}",
            summary=f"error: {message}"[:200],
            latency_s=time.monotonic() - started,
        )


def _first_line(text: str) -> str:
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return line[:160]


def build_toolset(
    cfg: Config,
    *,
    pool: AsyncConnectionPool | None = None,
    kb: KnowledgeSearch | None = None,
    proposer: Proposer | None = None,
    runner: Runner | None = None,
    host: HostFacts | None = None,
) -> Toolset:
    """Every tool of the catalog, with the output budget of the meta role.

    `host`: where the facts come from; default the live host (through `runner` and `pool`)."""
    import importlib

    from ai_sysadmin.meta.tools.live import LiveHost

    m = cfg.meta
    runner = runner or Runner(timeout=m.tool_timeout)
    host = host if host is not None else LiveHost(cfg, runner, pool)
    ctx = ToolContext(cfg=cfg, runner=runner, host=host, pool=pool, kb=kb, proposer=proposer)
    tools: list[Tool] = []
    for name in TOOL_MODULES:
        tools += importlib.import_module(f"ai_sysadmin.meta.tools.{name}").tools(ctx)
    if m.tools is not None:
        tools = [t for t in tools if t.name in m.tools]
    chars = budget_chars(cfg.roles.meta.context_size, m.tool_output_share, m.tool_output_max_chars)
    return Toolset(tools, max_chars=chars, timeout=m.tool_timeout, context=ctx)
