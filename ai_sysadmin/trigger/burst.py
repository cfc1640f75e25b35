"""Rate bursts: a template (or a unit) firing far above its recent rate.

Per key we keep an exponentially weighted mean of entries per window.  In the current
window a key bursts when its count reaches max(min_count, factor x mean) -- once per
window.  A key needs a baseline first: either it was seen in an earlier window, or the
detector has watched `warmup` windows (then a brand-new shape flooding the log is a
burst against a baseline of zero).  Right after a restart there is no baseline, so no
burst is claimed that a replay could not reproduce -- unless the state is restored
(`to_json`/`from_json`, saved with every L1 checkpoint), which is what lets a restart
after kill -9 decide exactly as one uninterrupted run.

Keys whose rate has decayed to nothing are forgotten once per window (a flood of
distinct templates must not grow the state for ever); the rule is a function of the
windows seen, so a replay forgets the same keys at the same moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Rate:
    mean: float = 0.0
    window: int = -1  # last window the mean was brought up to
    count: int = 0  # entries in `window`
    fired: bool = False
    new: bool = False  # first seen in `window`: no history of its own yet


class BurstDetector:
    def __init__(self, factor: float = 10.0, min_count: int = 100, alpha: float = 0.3, warmup: int = 3):
        self.factor = factor
        self.min_count = min_count
        self.alpha = alpha
        self.warmup = warmup
        self._rates: dict[object, _Rate] = {}
        self._first_window: int | None = None
        self._swept: int | None = None  # last window in which stale keys were forgotten

    def observe(self, key: object, window: int) -> int:
        """Count one entry for `key`.

        Returns 0 (no burst), the window's count so far when this entry makes it a burst,
        or -1 when the key already burst in this window (the entry belongs to that burst).
        """
        if self._first_window is None:
            self._first_window = window
        if self._swept != window:
            self._sweep(window)
        r = self._rates.get(key)
        if r is None:
            r = self._rates[key] = _Rate(window=window, new=True)
        elif r.window != window:
            self._roll(r, window)
        new_key = r.new
        r.count += 1
        if r.fired:
            return -1
        if r.count < self.min_count:
            return 0
        warmed = window - self._first_window >= self.warmup
        if new_key and not warmed:
            return 0
        if r.count >= max(self.min_count, self.factor * r.mean) and (warmed or r.mean > 0):
            r.fired = True
            return r.count
        return 0

    def _roll(self, r: _Rate, window: int) -> None:
        # Close r.window with its count, then decay through the windows with no entries.
        if window > r.window:
            r.mean = self.alpha * r.count + (1 - self.alpha) * r.mean
            gap = window - r.window - 1
            if gap > 0:
                r.mean *= (1 - self.alpha) ** min(gap, 1000)
        r.window = window
        r.new = False
        r.count = 0
        r.fired = False

    def _sweep(self, window: int) -> None:
        """Forget keys not seen in this or the last window whose decayed mean could not matter.

        Such a key, seen again, is a new key against a zero baseline; its threshold is then
        min_count either way, since factor x its decayed mean is below 1.
        """
        self._swept = window
        if self._first_window is None or window - self._first_window < self.warmup:
            return  # before warm-up a forgotten key would behave differently (no baseline)
        stale = []
        for key, r in self._rates.items():
            if r.window >= window - 1:
                continue
            mean = self.alpha * r.count + (1 - self.alpha) * r.mean
            mean *= (1 - self.alpha) ** min(window - r.window - 1, 1000)
            if self.factor * mean < 1:
                stale.append(key)
        for key in stale:
            del self._rates[key]

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self._first_window,
            "swept": self._swept,
            "rates": [[_key_json(k), r.mean, r.window, r.count, r.fired, r.new] for k, r in self._rates.items()],
        }

    def load_json(self, data: dict[str, Any]) -> None:
        self._first_window = data.get("first")
        self._swept = data.get("swept")
        self._rates = {
            _key_from(k): _Rate(mean=float(m), window=int(w), count=int(c), fired=bool(f), new=bool(n))
            for k, m, w, c, f, n in data.get("rates", [])
        }

    def __len__(self) -> int:
        return len(self._rates)


def _key_json(key: object) -> Any:
    return list(key) if isinstance(key, tuple) else key


def _key_from(value: Any) -> object:
    return tuple(value) if isinstance(value, list) else value
