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

from typing import Any

from ai_sysadmin.config import Config
from ai_sysadmin.meta.findings import MetaFindings
from ai_sysadmin.meta.loop import Investigator
from ai_sysadmin.meta.tools import HostFacts, build_toolset
from ai_sysadmin.meta.tools.runner import Runner


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
) -> Investigator:
    """`findings`: where the finding is stored (default MetaFindings on `pool`, none without a pool).
    `host`/`runner`: where the read tools' facts come from (default the live host)."""
    tools = build_toolset(cfg, pool=pool, kb=knowledge, proposer=proposer, runner=runner, host=host)
    if findings is None and pool is not None:
        findings = MetaFindings(pool)
    return Investigator(cfg, client, tools, proposer, incident_store=findings, kb=knowledge)
