"""Scenario files (tests/scenarios/data/*.json) -> journal exports, and a replay through the review.

Shared by the scenario tests and bench/review_model.py.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

from ai_sysadmin.commands.replay import replay

DATA = Path(__file__).resolve().parent.parent / "tests" / "scenarios" / "data"
T0_USEC = 1_750_000_000_000_000  # 2025-06-15, on a window boundary


def scenarios() -> list[str]:
    return sorted(p.stem for p in DATA.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())


def write_export(sc: dict[str, Any], directory: Path) -> tuple[Path, Path | None]:
    """The scenario as a `journalctl -o json` export (+ its metric snapshot file)."""
    src = directory / f"{sc['name']}.export.json"
    with src.open("w") as f:
        for i, e in enumerate(sc["entries"]):
            row = {k: (str(v) if k == "PRIORITY" else v) for k, v in e.items() if k != "t"}
            row["__REALTIME_TIMESTAMP"] = str(T0_USEC + int(float(e.get("t", i)) * 1e6))
            row["__CURSOR"] = f"s=scenario;i={i}"
            f.write(json.dumps(row) + "\n")
    snap = None
    if sc.get("metrics"):
        snap = directory / f"{sc['name']}.metrics.json"
        snap.write_text(json.dumps({"ts": T0_USEC / 1e6 + 5, **sc["metrics"]}))
    return src, snap


async def replay_review(
    cfg: Any, src: Path, snap: Path | None, *, no_model: bool = True, autonomy: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    args = argparse.Namespace(
        source=str(src),
        format="json",
        no_model=no_model,
        window=None,
        state_dir=None,
        kind=None,
        through="review",
        autonomy=autonomy,
        metrics=str(snap) if snap else None,
    )
    out, err = io.StringIO(), io.StringIO()
    rc = await replay(args, cfg, out, err)
    assert rc == 0, err.getvalue()
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def by_kind(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"trigger": [], "incident": [], "finding": [], "proposal": []}
    for line in lines:
        out[line["kind"]].append(line)
    return out
