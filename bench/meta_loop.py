"""L4 loop figures with the tiny model: per-step latency and tokens, whole-loop latency per scenario.

A real llama-server (SmolLM2-135M, --jinja, Qwen2.5 template, one 8192-token slot) answers
the investigation of three shipped scenarios (tests/scenarios/data), each written to a
real journal file that the `journal_query` tool reads.  The tiny model is forced to call
tools (tool_choice=required, `<tool_call>` prefill); its answers are not a measure of
judgement, only of what one loop costs on this machine.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.meta_loop [--steps 4] [--scenarios disk-full,crash-loop,oom-protected-unit]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.llm import CallRecord, LLMClient
from ai_sysadmin.meta.loop import Investigator
from ai_sysadmin.meta.tools import build_toolset
from rig.journal import JournalWriter
from rig.llama import tiny_server

REPO = Path(__file__).resolve().parent.parent

SCENARIOS = REPO / "tests" / "scenarios" / "data"
TOOLS = ["journal_query", "disk_usage", "top_processes", "failed_units", "unit_status"]
QUESTIONS = {
    "disk-full": "Writes are failing on this host. Why?",
    "crash-loop": "Why does myapp.service keep restarting?",
    "oom-protected-unit": "A process was killed. What happened?",
}


def write_journal(name: str, directory: Path) -> Path:
    sc = json.loads((SCENARIOS / f"{name}.json").read_text())
    start = int(time.time() * 1_000_000) - 300_000_000
    entries = [
        {
            **{k: v for k, v in e.items() if k != "t"},
            "__REALTIME_TIMESTAMP": start + int(float(e.get("t", i)) * 1_000_000),
        }
        for i, e in enumerate(sc["entries"])
    ]
    return JournalWriter().write(directory / f"{name}.journal", entries)


async def investigate(server, journal: Path, question: str, steps: int, state: Path) -> tuple[float, list, list]:
    cfg = parse_config(
        {
            "state_dir": str(state),
            "journal": {"source": "file", "path": str(journal)},
            "roles": {"meta": {"url": server.url, "model": server.alias, "timeout": 300, "context_size": 8192}},
            "meta": {
                "max_steps": steps,
                "tools": TOOLS,
                "tool_choice": "required",
                "prefill": "<tool_call>\n",
                "step_max_tokens": 96,
                "answer_max_tokens": 64,
                "diagnosis_max_tokens": 700,
            },
        },
        env={},
    )
    records: list[CallRecord] = []
    async with LLMClient(cfg.roles.meta, on_call=records.append) as client:
        inv = Investigator(cfg, client, build_toolset(cfg), None)
        t0 = time.monotonic()
        result = await inv.investigate(question)
        return time.monotonic() - t0, records, result.steps


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--scenarios", default="disk-full,crash-loop,oom-protected-unit")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-meta-"))
    server = tiny_server("meta", tmp, tools=True, ctx_size=8192, parallel=1).start()
    try:
        rows = []
        for name in args.scenarios.split(","):
            journal = write_journal(name, tmp)
            total, records, steps = asyncio.run(
                investigate(server, journal, QUESTIONS.get(name, "What is wrong?"), args.steps, tmp / f"state-{name}")
            )
            rows.append((name, total, records, steps))
    finally:
        server.stop()
    print(f"tiny model (SmolLM2-135M), {len(TOOLS)} tools offered, max_steps {args.steps}, 1 llama-server thread")
    print("\nper model call (all scenarios):")
    print(f"{'kind':<11} {'calls':>5} {'latency p50':>12} {'max':>7} {'prompt tok p50':>15} {'completion tok p50':>19}")
    by_kind: dict[str, list[CallRecord]] = {}
    for _, _, records, _ in rows:
        for r in records:
            by_kind.setdefault(r.kind, []).append(r)
    for kind, recs in by_kind.items():
        lat = [r.latency_s for r in recs]
        print(
            f"{kind:<11} {len(recs):>5} {statistics.median(lat):>11.2f}s {max(lat):>6.2f}s "
            f"{statistics.median(r.prompt_tokens for r in recs):>15.0f} "
            f"{statistics.median(r.completion_tokens for r in recs):>19.0f}"
        )
    tool_lat = [s.latency_s for _, _, _, steps in rows for s in steps if not s.refused]
    if tool_lat:
        print(
            f"tool calls: {len(tool_lat)}, latency p50 {statistics.median(tool_lat) * 1000:.0f} ms, "
            f"max {max(tool_lat) * 1000:.0f} ms"
        )
    print("\nwhole loop per scenario:")
    print(f"{'scenario':<20} {'latency':>8} {'model calls':>12} {'steps':>6} {'refused':>8} {'tokens in/out':>14}")
    for name, total, records, steps in rows:
        tin, tout = sum(r.prompt_tokens for r in records), sum(r.completion_tokens for r in records)
        print(
            f"{name:<20} {total:>7.1f}s {len(records):>12} {len(steps):>6} {sum(s.refused for s in steps):>8} "
            f"{f'{tin}/{tout}':>14}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
