"""Log templates mined with drain3: every message maps to a cluster; a new cluster is novelty.

Identity: a template is identified by its drain cluster id within one *generation* of
miner state (a random id written with the state).  Drain generalises a cluster's text
as it sees more lines (`disk sda failed` -> `disk <*> failed`), so the text is not a
stable key; the cluster id is.  Losing the state file starts a new generation, so
stale model answers cached for old cluster ids can never be applied to new clusters.

Persistence is ours, not drain3's: its FilePersistence rewrites the whole state on
every new cluster (quadratic during a log storm) and non-atomically (a kill -9 mid-write
corrupts it).  We snapshot atomically (write, fsync, rename) when asked -- the pipeline
does so before it advances the journal cursor, so the miner state is never behind the
cursor and a replay maps entries to the same clusters.

A dict keyed by the message with its digits folded short-cuts drain for repeats, which
are most journal lines: lines that differ only in pids, ports or counters share a
template by definition here (drain, after masking numbers, nearly always agrees).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from drain3 import TemplateMiner
from drain3.masking import MaskingInstruction
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner_config import TemplateMinerConfig

from ai_sysadmin.durable import write_atomic
from ai_sysadmin.trigger.model import template_id as hash_template

log = logging.getLogger(__name__)

# Order matters: the longest, most specific shapes first so a UUID is not eaten as numbers.
MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "UUID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(:\d+)?((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-fA-F]{1,4}:){3,7}[0-9a-fA-F]{1,4}((?=[^A-Za-z0-9:])|$)", "IP"),
    (r"((?<=[\s=:'\"(\[])|^)(/[^\s:;,'\"()\[\]]+)+", "PATH"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-fA-F0-9]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{12,})((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+(\.\d+)?)((?=[^A-Za-z0-9])|$)", "NUM"),
)
RAW_CACHE_SIZE = 200_000


class _AtomicFile(PersistenceHandler):
    """drain3 state in one file: `generation\\n` + drain3's compressed snapshot."""

    def __init__(self, path: Path, generation: str):
        self.path = path
        self.generation = generation

    def save_state(self, state: bytes) -> None:
        write_atomic(self.path, self.generation.encode() + b"\n" + state)

    def load_state(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        gen, _, state = data.partition(b"\n")
        self.generation = gen.decode()
        return state or None


@dataclass(frozen=True, slots=True)
class Match:
    cluster_id: int
    template_id: str
    is_new: bool  # this message created the cluster: a log shape never seen before


class Templates:
    def __init__(
        self,
        state_path: str | os.PathLike[str] | None = None,
        *,
        sim_threshold: float = 0.4,
        depth: int = 4,
        raw_cache_size: int = RAW_CACHE_SIZE,
    ):
        cfg = TemplateMinerConfig()
        cfg.masking_instructions = [MaskingInstruction(p, name) for p, name in MASKS]
        cfg.drain_sim_th = sim_threshold
        cfg.drain_depth = depth
        cfg.snapshot_compress_state = True
        self._handler: _AtomicFile | None = None
        if state_path is not None:
            path = Path(state_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = _AtomicFile(path, uuid.uuid4().hex)
        # TemplateMiner loads the saved state (and its generation) from the handler.
        self._miner = TemplateMiner(self._handler, cfg)
        # In memory (replay) the generation is fixed, so two replays of one input agree on ids.
        self.generation = self._handler.generation if self._handler else "in-memory"
        self._masker = self._miner.masker
        self._drain = self._miner.drain
        self._raw: dict[str, int] = {}
        self._raw_cache_size = raw_cache_size
        self._ids: dict[int, str] = {}
        self.dirty = False

    @property
    def cluster_count(self) -> int:
        return len(self._drain.id_to_cluster)

    def match(self, message: str, key: str | None = None) -> Match:
        """Template of `message`; `key` (rules.shape_key) is the repeat-cache key."""
        if key is None:
            key = message
        cid = self._raw.get(key)
        if cid is not None:
            return Match(cid, self._template_id(cid), False)
        cluster, change = self._drain.add_log_message(self._masker.mask(message))
        cid = cluster.cluster_id
        if change != "none":
            self.dirty = True
        if len(self._raw) >= self._raw_cache_size:
            self._raw.clear()  # cheaper than LRU bookkeeping per line; refills from drain
        self._raw[key] = cid
        return Match(cid, self._template_id(cid), change == "cluster_created")

    def _template_id(self, cid: int) -> str:
        tid = self._ids.get(cid)
        if tid is None:
            tid = self._ids[cid] = hash_template(f"{self.generation}:{cid}")
        return tid

    def template(self, cluster_id: int) -> str:
        cluster = self._drain.id_to_cluster.get(cluster_id)
        return cluster.get_template() if cluster is not None else "<unknown>"

    def save(self) -> None:
        """Snapshot atomically if anything changed since the last snapshot."""
        if self._handler is None or not self.dirty:
            return
        self._miner.save_state("checkpoint")
        self.dirty = False
