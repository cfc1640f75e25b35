"""Connections: how long one may wait for its request, how many may wait without a key, how many files.

Three defences against a client that opens connections and never finishes a request
(1,100 half-open sockets once stopped the API serving anyone for 40 s):

* **Header timeout** (`api.header_timeout`, 5 s): a connection that has not sent a
  complete request header within that time of being accepted is closed.  aiohttp's
  server has no such timeout.  Its `keepalive_timeout` (passed to the runner, as
  `handler_args` would: `api.keepalive_timeout`) closes connections idle *between*
  requests -- including one that went idle and then sent half a header, since data
  does not re-arm it -- and only recent releases (aio-libs/aiohttp#13681) also arm it
  for a connection that never sends a request, after the whole keep-alive period,
  which must stay long for honest clients' connection pools.  The other handler
  arguments bound header *sizes*, not time; `read_timeout` is a client option.  So
  the guard below wraps the protocol factory of the listening socket
  (`GuardedTCPSite`): each accepted connection gets one `loop.call_later` timer,
  cancelled when the auth middleware sees the connection's first request.  One timer
  per connection in the event loop, no task, no polling; it uses aiohttp's public
  protocol surface (`RequestHandler.force_close`, `request.protocol`), not its parser.
* **Unauthenticated cap** (`api.max_unauthenticated_connections`, 1024): connections
  that have not yet made a request that passed authentication are kept in arrival
  order; when a new one would exceed the cap, the *oldest* is closed.  Key-holders
  leave that set with their first request, so a flood cannot push them out, and a
  key-holder's new connection only has to send its header before the flood opens
  `cap` more connections behind it.  (Refusing the newest instead would lock
  key-holders out for as long as the flood lasts.)
* **Open files**: the process raises its soft RLIMIT_NOFILE to the hard limit at start
  (systemd's default soft limit is 1,024; the unit sets LimitNOFILE too), so the cap
  and not the file table decides who is served.  asyncio stops accepting for a second
  each time accept() fails with EMFILE, which starves everyone.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# Linux's default fs.nr_open: the most a soft limit can be raised to when the hard one is unlimited.
_NR_OPEN_DEFAULT = 1 << 20


class ConnectionGuard:
    """Header timer per accepted connection and the cap on connections without a valid key."""

    def __init__(
        self, header_timeout: float, max_unauthenticated: int, on_close: Callable[[str], None] = lambda reason: None
    ):
        self.header_timeout = header_timeout
        self.max_unauthenticated = max_unauthenticated
        self._on_close = on_close
        # Not yet authenticated, oldest first -> the header timer (None once a request came).
        self._unauthenticated: OrderedDict[RequestHandler, asyncio.TimerHandle | None] = OrderedDict()

    def protocol_factory(self, make: Callable[[], RequestHandler]) -> Callable[[], RequestHandler]:
        def factory() -> RequestHandler:
            protocol = make()
            self._admit(protocol)
            return protocol

        return factory

    def unauthenticated(self) -> int:
        """Connections still tracked (an upper bound: some may have closed since)."""
        return len(self._unauthenticated)

    def _admit(self, protocol: RequestHandler) -> None:
        while len(self._unauthenticated) >= self.max_unauthenticated:
            oldest, timer = self._unauthenticated.popitem(last=False)
            if timer is not None:
                timer.cancel()
            self._close(oldest, "unauthenticated_cap")
        timer = asyncio.get_running_loop().call_later(self.header_timeout, self._header_timeout, protocol)
        self._unauthenticated[protocol] = timer

    def _header_timeout(self, protocol: RequestHandler) -> None:
        if self._unauthenticated.get(protocol, None) is not None:
            del self._unauthenticated[protocol]
            self._close(protocol, "header_timeout")

    def request_started(self, request: web.Request) -> None:
        """A complete request header arrived on this connection: its header timer stops."""
        protocol = request.protocol
        timer = self._unauthenticated.get(protocol)
        if timer is not None:
            timer.cancel()
            self._unauthenticated[protocol] = None

    def authenticated(self, request: web.Request) -> None:
        """The connection made a request that passed authentication: no longer capped or timed."""
        timer = self._unauthenticated.pop(request.protocol, None)
        if timer is not None:
            timer.cancel()

    def _close(self, protocol: RequestHandler, reason: str, *, again: bool = True) -> None:
        if protocol.transport is None:
            # Either closed already, or accepted in the same batch as the connection that
            # evicts it and not yet connected: asyncio queued its connection_made (call_soon)
            # when it built its transport, so one more turn of the loop tells which.
            if again:
                asyncio.get_running_loop().call_soon(lambda: self._close(protocol, reason, again=False))
            return
        protocol.force_close()
        self._on_close(reason)

    def close(self) -> None:
        for timer in self._unauthenticated.values():
            if timer is not None:
                timer.cancel()
        self._unauthenticated.clear()


class GuardedTCPSite(web.TCPSite):
    """aiohttp's TCPSite, with each accepted connection passing through a ConnectionGuard."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: ConnectionGuard, **kw):
        super().__init__(runner, host, port, **kw)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner, as TCPSite.start does
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )

    async def stop(self) -> None:
        self._guard.close()
        await super().stop()


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, _NR_OPEN_DEFAULT)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
        return soft, soft
    return soft, target
