"""Rate bursts: a template or a unit logging far above its recent rate."""

from __future__ import annotations

from ai_sysadmin.trigger.burst import BurstDetector
from ai_sysadmin.trigger.entry import Entry
from tests.trigger.helpers import T0_USEC, pipeline

W = 300_000_000


def _e(i: int, window: int, msg: str = "request {i} served", unit: str = "web.service") -> Entry:
    return Entry(
        message=msg.format(i=i), realtime_usec=T0_USEC + window * W + i, priority=6, identifier="web", unit=unit
    )


def test_a_template_far_above_its_recent_rate_is_one_burst_trigger_per_window() -> None:
    p = pipeline(burst_min_count=20, burst_factor=5)
    for w in range(4):  # a steady 3 per window: the baseline
        for i in range(3):
            p.process(_e(i, w))
    assert not [t for t in p.totals() if t.source == "burst"]
    for i in range(60):  # then 60 in one window
        p.process(_e(i, 4))
    bursts = [t for t in p.totals() if t.source == "burst"]
    template_burst = [t for t in bursts if "served" in t.template]
    unit_burst = [t for t in bursts if t.template == "log rate of web.service"]
    assert len(template_burst) == 1 and template_burst[0].count == 60  # counts the whole window
    assert len(unit_burst) == 1 and unit_burst[0].category == "resource"


def test_no_burst_without_a_baseline_right_after_start() -> None:
    p = pipeline(burst_min_count=20, burst_factor=5)
    for i in range(500):
        p.process(_e(i, 0))
    assert not [t for t in p.totals() if t.source == "burst"]


def test_detector_decays_over_quiet_windows() -> None:
    d = BurstDetector(factor=3, min_count=5, alpha=0.5, warmup=1)
    for w in range(3):
        for _ in range(10):
            d.observe("k", w)
    # A steady 10 per window is no burst; after 20 quiet windows 10 again is one.
    assert all(d.observe("k", 3) == 0 for _ in range(10))
    fired = [d.observe("k", 30) for _ in range(10)]
    assert fired.count(0) == 4 and fired[4] == 5 and fired[5:] == [-1] * 5
