"""The results file: written after every scenario, so an interrupted run resumes where it stopped.

{"format": "ai-sysadmin-eval/1", "run": {autonomy, no_model, models, investigate}, "scenarios":
{name: {"score": ScenarioScore, "observation": Observation | null}}, "summary": Summary}

A resumed run keeps the scored scenarios of a file made with the same settings and runs
the rest (skipped ones again: the model may be back).  A file from other settings is
refused with the difference named, so two configurations never mix in one table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_sysadmin.eval.score import Observation, ScenarioScore, summarize

FORMAT = "ai-sysadmin-eval/1"


class ResultsError(ValueError):
    """A results file that cannot be read or belongs to another run; the message names it."""


@dataclass
class Results:
    path: Path | None
    run: dict[str, Any]
    scores: dict[str, ScenarioScore] = field(default_factory=dict)
    observations: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def done(self, name: str) -> bool:
        s = self.scores.get(name)
        return s is not None and s.status == "ok"

    def add(self, score: ScenarioScore, obs: Observation | None) -> None:
        self.scores[score.name] = score
        self.observations[score.name] = None if obs is None else obs.__dict__.copy()
        self.save()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "run": self.run,
            "scenarios": {
                n: {"score": s.to_json(), "observation": self.observations.get(n)} for n, s in self.scores.items()
            },
            "summary": summarize(list(self.scores.values())).to_json(),
        }

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: an interrupt never leaves half a file


def read_results(path: Path) -> Results:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: not a results file (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("scenarios"), dict):
        raise ResultsError(f"{path}: not an ai-sysadmin eval results file (format {FORMAT})")
    res = Results(path, data.get("run") or {})
    for name, entry in data["scenarios"].items():
        try:
            res.scores[name] = ScenarioScore.from_json(entry["score"])
        except (KeyError, TypeError) as exc:
            raise ResultsError(f"{path}: scenarios.{name}.score: unreadable ({exc})") from None
        res.observations[name] = entry.get("observation")
    return res


def open_results(path: Path | None, run: dict[str, Any], *, fresh: bool) -> Results:
    """The results to continue (same settings) or a new, empty set."""
    if path is None or fresh or not path.exists():
        return Results(path, run)
    old = read_results(path)
    # A file from before L4 has no `investigate`: it ran none.
    before = {"investigate": "none"}
    diff = [
        f"{k}: {old.run.get(k, before.get(k))!r} there, {v!r} now"
        for k, v in run.items()
        if old.run.get(k, before.get(k)) != v
    ]
    if diff:
        raise ResultsError(
            f"{path}: made with other settings ({'; '.join(diff)}); use --fresh to start over or --out for another file"
        )
    old.run = run
    return old
