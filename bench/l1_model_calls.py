"""Trigger-model calls per 10k lines on loghub samples x N, with the real tiny model.

Data: loghub (https://github.com/logpai/loghub) BGL, HDFS, Linux, OpenSSH 2k samples,
x N copies with shifted numbers (see l1_throughput.py), as text lines.  Starts the
provisioned SmolLM2-135M llama-server (or uses --model URL) and runs L1 with the model
path on; prints calls, candidate templates, calls per 10k lines and triggers by source.

    python -m bench.l1_model_calls [--copies 5] [--model URL]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from ai_sysadmin.config import parse_config
from ai_sysadmin.llm import LLMClient
from ai_sysadmin.trigger.follower import build_pipeline
from ai_sysadmin.trigger.textparse import TextParser
from bench.l1_throughput import loghub_lines, shifted


async def run(url: str, alias: str, copies: int) -> None:
    cfg = parse_config({"roles": {"trigger": {"url": url, "model": alias}}}, env={})
    tcfg = cfg.trigger.model_copy(update={"model_calls_per_minute": 1e9})
    async with LLMClient(cfg.roles.trigger) as client:
        pipe = build_pipeline(tcfg, state_dir=None, model=client)
        worker = asyncio.create_task(pipe.classifier.run())
        parser = TextParser()
        lines = loghub_lines()
        n = 0
        t0 = time.perf_counter()
        for k in range(copies):
            for _, line in lines:
                pipe.process(parser.parse(shifted(line, k)))
                n += 1
                if n % 256 == 0:
                    await asyncio.sleep(0)
        await pipe.classifier.drain()
        while not pipe.classifier.idle:
            await asyncio.sleep(0.05)
        worker.cancel()
        c = pipe.classifier
        by_source = Counter(t.source.split(":")[0] for t in pipe.totals())
        print(
            f"{n} lines, {pipe.stats.novel_templates} templates, {pipe.stats.model_requests} sent to the model, "
            f"{c.calls} model calls ({c.calls * 10_000 / n:.1f} per 10k lines, failures {c.failures}), "
            f"cached answers {len(c.cache)}; triggers by source {dict(by_source)}; "
            f"{time.perf_counter() - t0:.0f}s"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--model", metavar="URL")
    ap.add_argument("--alias", default="trigger")
    args = ap.parse_args()
    server = None
    if not args.model:
        from rig.llama import tiny_server

        server = tiny_server("trigger", Path(tempfile.mkdtemp())).start()
        args.model = server.url
    try:
        asyncio.run(run(args.model, args.alias, args.copies))
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
