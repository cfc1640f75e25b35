"""What each role's llama-server is serving right now: model, file, context, slots, speed.

Read from llama-server's own endpoints: `/props` (alias, model file, context per slot,
slot count), `/slots` (which slots are busy; may be disabled with --no-slots) and
`/metrics` (llama-server started with --metrics: recent generation tokens/s, requests
processing).  `ai-sysadmin models` prints it; `/api/v1/status` carries it under `models`.
A server that does not answer is reported as such, never as an error of the caller.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp

from ai_sysadmin.config import RoleConfig

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ServingInfo:
    role: str
    url: str
    up: bool
    status: str  # ok | loading | unavailable | HTTP nnn
    served_model: str | None = None  # llama-server's --alias (the id it answers to)
    model_file: str | None = None
    context_size: int | None = None  # tokens per slot
    slots_total: int | None = None
    slots_busy: int | None = None
    tokens_per_second: float | None = None  # recent generation speed (llamacpp:predicted_tokens_seconds)
    tokens_predicted_total: int | None = None
    requests_processing: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def serving_info(
    roles: Iterable[RoleConfig], session: aiohttp.ClientSession | None = None, timeout: float = PROBE_TIMEOUT
) -> list[ServingInfo]:
    """One entry per enabled role, probed concurrently."""
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        return list(await asyncio.gather(*(_one(r, session, timeout) for r in roles if r.enable)))
    finally:
        if own:
            await session.close()


async def _get(session: aiohttp.ClientSession, role: RoleConfig, path: str, timeout: float) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {role.api_key.reveal()}"} if role.api_key else {}
    try:
        async with session.get(f"{role.url}{path}", headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            if path == "/metrics":
                return r.status, await r.text()
            try:
                return r.status, await r.json(content_type=None)
            except ValueError:
                return r.status, None
    except (TimeoutError, aiohttp.ClientError):
        return 0, None


async def _one(role: RoleConfig, session: aiohttp.ClientSession, timeout: float) -> ServingInfo:
    (ps, props), (ss, slots), (ms, metrics) = await asyncio.gather(
        _get(session, role, "/props", timeout),
        _get(session, role, "/slots", timeout),
        _get(session, role, "/metrics", timeout),
    )
    if ps != 200 or not isinstance(props, dict):
        status = "unavailable" if ps == 0 else ("loading" if ps == 503 else f"HTTP {ps}")
        return ServingInfo(role.name, role.url, False, status)
    gen = props.get("default_generation_settings") or {}
    busy = None
    if ss == 200 and isinstance(slots, list):
        busy = sum(1 for s in slots if isinstance(s, dict) and s.get("is_processing"))
    parsed = parse_prometheus(metrics) if ms == 200 and isinstance(metrics, str) else {}
    if busy is None and "llamacpp:requests_processing" in parsed:
        busy = int(parsed["llamacpp:requests_processing"])
    path = props.get("model_path")
    tps = parsed.get("llamacpp:predicted_tokens_seconds")
    return ServingInfo(
        role=role.name,
        url=role.url,
        up=True,
        status="ok",
        served_model=props.get("model_alias") or (os.path.basename(path) if path else None),
        model_file=path,
        context_size=_int(gen.get("n_ctx") if isinstance(gen, dict) else None) or _int(props.get("n_ctx")),
        slots_total=_int(props.get("total_slots")),
        slots_busy=busy,
        tokens_per_second=round(tps, 1) if tps is not None else None,
        tokens_predicted_total=_int(parsed.get("llamacpp:tokens_predicted_total")),
        requests_processing=_int(parsed.get("llamacpp:requests_processing")),
    )


def parse_prometheus(text: str) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text page (all llama-server exports)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        try:
            out[name] = float(value.split()[0])
        except (ValueError, IndexError):
            continue
    return out


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def format_table(infos: list[ServingInfo]) -> str:
    """The `ai-sysadmin models` table."""
    head = f"{'role':<8} {'state':<12} {'model':<16} {'ctx':>6} {'slots':>7} {'tok/s':>7}  file"
    rows = [head]
    for i in infos:
        slots = f"{i.slots_busy if i.slots_busy is not None else '?'}/{i.slots_total or '?'}" if i.up else "-"
        tps = f"{i.tokens_per_second:.1f}" if i.tokens_per_second is not None else "-"
        rows.append(
            f"{i.role:<8} {i.status:<12} {(i.served_model or '-'):<16} {i.context_size or '-':>6} "
            f"{slots:>7} {tps:>7}  {i.model_file or i.url}"
        )
    return "\n".join(rows)
