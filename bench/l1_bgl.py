"""BGL 2k: per-line precision / recall / F1 of L1 against loghub's alert labels.

Data: loghub (https://github.com/logpai/loghub), BGL_2k.log; first field `-` = normal,
anything else = an alert category.  The label field is cut off before L1 sees a line.

    python -m bench.l1_bgl                 # deterministic path only
    python -m bench.l1_bgl --model URL     # plus the trigger model at URL (llama-server)
    python -m bench.l1_bgl --tiny-model    # start the provisioned SmolLM2-135M and use it

A line counts as flagged when it fed a trigger: a rule, a model classification
(severity >= trigger.model_min_severity), or a burst.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.trigger.follower import build_pipeline
from ai_sysadmin.trigger.pipeline import HIT_BURST, HIT_MODEL, HIT_RULE
from ai_sysadmin.trigger.textparse import TextParser

REPO = Path(__file__).resolve().parent.parent

DATA = Path(os.environ.get("LOGHUB_DIR", REPO.parent / "shared" / "datasets" / "loghub"))


def load_bgl(path: Path) -> tuple[list[str], list[bool]]:
    lines, labels = [], []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not raw.strip():
            continue
        label, _, rest = raw.partition(" ")
        lines.append(rest)
        labels.append(label != "-")
    return lines, labels


async def evaluate(
    lines: list[str], labels: list[bool], model_url: str | None, alias: str, min_severity: str = "medium"
) -> dict:
    from ai_sysadmin.llm import CallRecord, LLMClient

    flagged: set[int] = set()

    def hook(seqs: list[int], flag: int) -> None:
        flagged.update(seqs)

    data = {} if model_url is None else {"roles": {"trigger": {"url": model_url, "model": alias}}}
    cfg = parse_config({"state_dir": tempfile.mkdtemp(), **data}, env={})
    calls: list[CallRecord] = []
    client = LLMClient(cfg.roles.trigger, on_call=calls.append) if model_url else None

    tcfg = cfg.trigger.model_copy(update={"model_calls_per_minute": 1e9, "model_min_severity": min_severity})
    pipeline = build_pipeline(tcfg, state_dir=None, model=client, decision_hook=hook)
    parser = TextParser()
    worker = asyncio.create_task(pipeline.classifier.run()) if pipeline.classifier else None
    t0 = time.perf_counter()
    for seq, line in enumerate(lines, 1):
        flags = pipeline.process(parser.parse(line))
        if flags & (HIT_RULE | HIT_MODEL | HIT_BURST):
            flagged.add(seq)
        if seq % 64 == 0:
            await asyncio.sleep(0)
    if pipeline.classifier is not None:
        await pipeline.classifier.drain()
        while not pipeline.classifier.idle:
            await asyncio.sleep(0.05)
        worker.cancel()
    elapsed = time.perf_counter() - t0
    if client is not None:
        await client.aclose()
    tp = sum(1 for i, lab in enumerate(labels, 1) if lab and i in flagged)
    fp = sum(1 for i, lab in enumerate(labels, 1) if not lab and i in flagged)
    fn = sum(1 for i, lab in enumerate(labels, 1) if lab and i not in flagged)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    c = pipeline.classifier
    return {
        "lines": len(lines),
        "alerts": sum(labels),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": p,
        "recall": r,
        "f1": f1,
        "templates": pipeline.stats.novel_templates,
        "model_calls": c.calls if c else 0,
        "model_requests": pipeline.stats.model_requests,
        "model_failures": c.failures if c else 0,
        "calls_per_10k": (c.calls if c else 0) * 10_000 / len(lines),
        "seconds": elapsed,
        "triggers": len(pipeline.totals()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", metavar="URL")
    ap.add_argument("--alias", default="trigger")
    ap.add_argument("--tiny-model", action="store_true", help="start the provisioned tiny llama-server")
    ap.add_argument("--data", default=str(DATA / "BGL_2k.log"))
    ap.add_argument("--min-severity", default="medium", help="model answers below this raise no trigger")
    args = ap.parse_args()
    lines, labels = load_bgl(Path(args.data))
    runs = [("deterministic", None)]
    server = None
    if args.tiny_model:
        from rig.llama import tiny_server

        server = tiny_server("trigger", Path(tempfile.mkdtemp())).start()
        args.model = server.url
    if args.model:
        runs.append(("with model", args.model))
    try:
        for name, url in runs:
            res = asyncio.run(evaluate(lines, labels, url, args.alias, args.min_severity))
            if url:
                name += f" (>= {args.min_severity})"
            print(
                f"BGL_2k {name:>13}: precision {res['precision']:.3f} recall {res['recall']:.3f} "
                f"F1 {res['f1']:.3f} (tp {res['tp']} fp {res['fp']} fn {res['fn']} of {res['alerts']} alerts "
                f"in {res['lines']} lines); templates {res['templates']}, triggers {res['triggers']}, "
                f"model calls {res['model_calls']} for {res['model_requests']} template requests "
                f"({res['calls_per_10k']:.1f} per 10k lines, failures {res['model_failures']}), "
                f"{res['seconds']:.1f}s"
            )
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
