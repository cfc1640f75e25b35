"""The one place the L4 investigator is assembled: the service's escalations, the API's
`ai-sysadmin` model, `ask`/`chat` and `eval` all call `build_investigator`.

    inv = build_investigator(cfg, client=meta, pool=pool, proposer=actions, knowledge=kb)
    inv = build_investigator(cfg, client=meta, proposer=dry, knowledge=shelf,   # eval: facts from
                             host=snapshot, runner=runner, findings=memory)     # a snapshot

Each part may be None and the investigation degrades on its own: no pool -> nothing is
stored (and the database tools say so); no proposer -> proposals are refused; no
knowledge -> no knowledge context, and the knowledge tool says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.loop import Investigator
from ai_sysadmin.meta.tools import HostFacts, build_toolset
from ai_sysadmin.meta.tools.runner import Runner

if TYPE_CHECKING:
    from ai_sysadmin.meta.loop import Investigation

log = logging.getLogger(__name__)


def build_investigator(
    cfg: Config,
    *,
    client: Any,
    proposer: Any,
    pool: Any = None,
    knowledge: Any = None,
    findings: Any = None,
    host: HostFacts | None = None,
    runner: Runner | None = None,
    about: str | None = None,
) -> Investigator:
    """`findings`: where the finding is stored (default MetaFindings on `pool`, none without a pool).
    `host`/`runner`: where the read tools' facts come from (default the live host); `about`: which
    host that is, for the model, when it is not this one."""
    tools = build_toolset(cfg, pool=pool, kb=knowledge, proposer=proposer, runner=runner, host=host)
    if findings is None and pool is not None:
        findings = MetaFindings(pool)
    return Investigator(cfg, client, tools, proposer, incident_store=findings, kb=knowledge, about=about)


def member_about(host: str) -> str:
    return (
        f"The incident is on host {host}, a member of the fleet this hub runs. Every read tool reads what the "
        f"hub holds of {host} -- its journal files, metrics, failed units, triggers and incidents -- never the "
        "hub's own state; what the hub does not hold (processes, directories, generations) is an error. "
        f"Proposed actions run on {host}."
    )


class HostInvestigators:
    """A hub's escalations (docs/fleet.md): each incident investigated with the facts of the host
    it opened on -- this host's live state (`local`), or a member's as the hub holds it
    (`member(host)`, built once per member)."""

    def __init__(
        self,
        local: Investigator,
        member: Callable[[str], Investigator],
        host_of: Callable[[int], Any],
        *,
        local_hosts: Sequence[str],
    ):
        """`host_of(incident_id)`: awaitable of (the incident's host, the store's local host) or None."""
        self.local = local
        self._member = member
        self._host_of = host_of
        self._local_hosts = frozenset(local_hosts)
        self._members: dict[str, Investigator] = {}

    async def for_incident(self, incident_id: int | None) -> Investigator:
        if incident_id is None:
            return self.local
        row = await self._host_of(incident_id)
        if row is None:
            return self.local
        host, store_local = row
        if host in self._local_hosts or host == store_local:
            return self.local
        if host not in self._members:
            self._members[host] = self._member(host)
        return self._members[host]

    async def investigate(self, question: str, *, incident_id: int | None = None) -> Investigation:
        inv = await self.for_incident(incident_id)
        return await inv.investigate(question, incident_id=incident_id)


def escalation_investigator(
    cfg: Config, *, client: Any, proposer: Any, pool: Any, knowledge: Any, findings: Any
) -> Investigator | HostInvestigators:
    """The investigator of the service's escalations: on a hub one per incident's host, elsewhere
    the live host's."""
    local = build_investigator(cfg, client=client, pool=pool, proposer=proposer, knowledge=knowledge, findings=findings)
    if cfg.fleet.role != "hub" or pool is None:
        return local
    from ai_sysadmin.meta.tools.member import MemberHost
    from ai_sysadmin.store.incidents import incident_host

    files = member_journal_files(cfg)
    runner = Runner(timeout=cfg.meta.tool_timeout)

    def member(host: str) -> Investigator:
        facts = MemberHost(cfg, runner, pool, host, lambda: files(host))
        log.info("meta: investigations of host %s read what the hub holds of it (%s)", host, facts.name)
        return build_investigator(
            cfg,
            client=client,
            pool=pool,
            proposer=proposer,
            knowledge=knowledge,
            findings=findings,
            host=facts,
            runner=runner,
            about=member_about(host),
        )

    async def host_of(incident_id: int) -> Any:
        async with pool.connection() as conn:
            return await incident_host(conn, incident_id)

    return HostInvestigators(local, member, host_of, local_hosts=[cfg.fleet.host_id()])


def member_journal_files(cfg: Config) -> Callable[[str], Sequence[str]]:
    """host -> its journal files in the hub's journal directory now (named as the hub's L1 names them)."""
    directory = cfg.fleet.journal_dir
    if directory is None:
        return lambda host: ()
    from ai_sysadmin.trigger.hostset import HostSet
    from ai_sysadmin.trigger.remote_names import HostNames

    hosts = HostSet(directory, exclude=[cfg.fleet.host_id()], names=HostNames(cfg.fleet.members))

    def files(host: str) -> Sequence[str]:
        found = hosts.scan().get(host)
        return found.files if found is not None else ()

    return files
