"""The metrics collector loop: read, store (one COPY batch), raise threshold triggers.

On a fleet member each reading is also written to the hub's database (`mirrors`,
store/hub.py HubMetrics): a mirror never holds up or fails the local store; it drops
what the hub cannot take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ai_sysadmin.collect.system import SystemReader
from ai_sysadmin.collect.thresholds import evaluate
from ai_sysadmin.collect.units import UnitStates, read_units
from ai_sysadmin.config import Config
from ai_sysadmin.store.metrics import MetricStore, Sample
from ai_sysadmin.trigger.model import Trigger
from ai_sysadmin.trigger.sink import TriggerSink

log = logging.getLogger(__name__)

THRESHOLD_STREAM = "thresholds"  # the collector has no cursor; its batches carry none


class MetricSink(Protocol):
    """Where a reading's samples go: the local store (MetricStore), the hub (HubMetrics)."""

    async def write(self, samples: Sequence[Sample]) -> str: ...


@dataclass
class Reading:
    samples: list[Sample]
    units: UnitStates
    triggers: list[Trigger]


class MetricsCollector:
    def __init__(
        self,
        cfg: Config,
        metrics: MetricStore,
        triggers: TriggerSink,
        reader: SystemReader | None = None,
        mirrors: Sequence[MetricSink] = (),
    ):
        self._cfg = cfg
        self._metrics = metrics
        self._mirrors = tuple(mirrors)
        self._triggers = triggers
        self._reader = reader or SystemReader()
        self._units_note: str | None = None

    async def read(self) -> Reading:
        samples = await asyncio.to_thread(self._reader.read)
        units = await asyncio.to_thread(read_units)
        if not units.available and units.reason != self._units_note:
            log.warning("unit state not collected: %s", units.reason)
        self._units_note = units.reason if not units.available else None
        if units.available:
            ts = samples[0].ts if samples else 0.0
            samples.append(Sample(ts, "units.failed", float(len(units.failed))))
            samples.extend(Sample(ts, "unit.failed", 1.0, u) for u in units.failed)
        return Reading(samples, units, evaluate(samples, units, self._cfg.thresholds))

    async def collect_once(self) -> Reading:
        reading = await self.read()
        await self._metrics.write(reading.samples)
        for mirror in self._mirrors:
            await mirror.write(reading.samples)
        if reading.triggers:
            await self._triggers.record_triggers(reading.triggers, None, stream=THRESHOLD_STREAM)
        return reading

    async def run(self) -> None:
        interval = self._cfg.intervals.metrics
        while True:
            try:
                await self.collect_once()
            except Exception:  # one bad reading must not stop the collector
                log.exception("metrics collection failed; next try in %.0fs", interval)
            await asyncio.sleep(interval)
