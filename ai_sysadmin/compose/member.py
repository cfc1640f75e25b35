"""A fleet member's parts that reach the hub (docs/fleet.md): its metric sink and its executor's seat.

Built here, from `fleet.hub_dsn` and `fleet.hub_password_file`, once per process: the
orchestrator's collector mirrors its readings to the hub (`hub_metrics`), and
`ai-sysadmin executor` on a member runs the actions addressed to its host from the hub's
database (`hub_seat`).  Both connect as the member's own role and keep no connection
open while the hub is away.  `None` from either: not a member, or no `hub_dsn` set.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg

from ai_sysadmin.actions.executor import ACTOR, HubSeat
from ai_sysadmin.config import Config
from ai_sysadmin.secret import CredentialUnavailable, credential_path
from ai_sysadmin.store.hub import HubMetrics

CONNECT_TIMEOUT = 5  # seconds: a hub that does not answer is an outage, not a hang


class HubPasswordUnavailable(Exception):
    """`fleet.hub_password_file` names nothing this process can read."""


def hub_password(ref: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The member role's password: a path, or a systemd credential name (read at each connection)."""
    if not ref:
        return None
    try:
        path = credential_path(ref, "hub password", env)
    except CredentialUnavailable as exc:
        raise HubPasswordUnavailable(str(exc)) from None
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise HubPasswordUnavailable(f"cannot read the hub password {str(path)!r}: {exc.strerror or exc}") from None


def hub_connector(cfg: Config, application_name: str) -> Callable[[], Awaitable[psycopg.AsyncConnection]] | None:
    """How this member connects to the hub's database as its own role; None when it is not a member with a DSN."""
    fleet = cfg.fleet
    dsn = fleet.hub_dsn
    if fleet.role != "member" or not dsn:
        return None
    password_ref = fleet.hub_password_file

    async def connect() -> psycopg.AsyncConnection:
        kw: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT, "application_name": application_name}
        password = hub_password(password_ref)
        if password is not None:
            kw["password"] = password
        # pg_catalog first, whatever the hub's database sets: as the executor does locally.
        return await psycopg.AsyncConnection.connect(
            dsn, autocommit=True, options="-c search_path=pg_catalog,public", **kw
        )

    return connect


def hub_metrics(cfg: Config) -> HubMetrics | None:
    connect = hub_connector(cfg, "ai-sysadmin-member-collector")
    return None if connect is None else HubMetrics(cfg.fleet.host_id(), connect)


def hub_seat(cfg: Config) -> HubSeat | None:
    connect = hub_connector(cfg, ACTOR)
    return None if connect is None else HubSeat(cfg.fleet.host_id(), connect)
