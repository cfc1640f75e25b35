"""L3 with the real tiny model (SmolLM2-135M): latency p50/p95 at the default budget, tokens per
review, cached share of prompt tokens on consecutive reviews, and judgement over the scenarios.

    python -m bench.review_model [--reviews 6]

The server gets the review role's default context (8192 tokens, one slot), so the default
budget (context_size - max_tokens - 256) applies.  Judgement figures compare the model's
findings/actions to each scenario's answer key; the 135M model is not expected to judge well.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from datetime import UTC
from pathlib import Path

from ai_sysadmin.config import parse_config
from rig.scenarios import by_kind, load, replay_review, scenarios, write_export


async def main(args: argparse.Namespace) -> None:
    from rig.llama import tiny_server
    from rig.net import free_port

    logs = Path(tempfile.mkdtemp())
    server = tiny_server("review", logs, port=free_port(), ctx_size=8192, parallel=1)
    server.start()
    try:
        cfg = parse_config(
            {
                "state_dir": str(logs / "state"),
                "roles": {
                    "trigger": {"enable": False},
                    "review": {"url": server.url, "model": "review", "timeout": 600},
                },
            },
            env={},
        )
        from ai_sysadmin.llm import LLMClient
        from rig.review import service

        async with LLMClient(cfg.roles.review) as client:
            svc = service(cfg, client=client)
            results = []
            from datetime import datetime

            from ai_sysadmin.trigger.model import Trigger, template_id

            for n in range(args.reviews):
                svc.proposed.clear()
                if n:  # the state changes between reviews, as it does on a host: one new trigger each time
                    at = datetime.now(UTC)
                    text = f"worker{n}.service: Main process exited, code=exited, status={n}/FAILURE"
                    svc.window.add(
                        [
                            Trigger(
                                id=f"{n:02d}" + "cd" * 15,
                                severity="medium",
                                category="unit-failure",
                                source="rule:unit-start-failed",
                                unit=f"worker{n}.service",
                                template=text,
                                template_id=template_id(text),
                                count=1,
                                first_seen=at,
                                last_seen=at,
                                sample=[text],
                                summary=text,
                            )
                        ]
                    )
                results.append(await svc.review_once("bench"))
        ok = [r for r in results if r.outcome == "ok"]
        lat = sorted(r.latency_s for r in results if r.latency_s)
        print(
            f"reviews: {len(results)} (one new trigger between consecutive reviews), ok {len(ok)}, "
            f"budget {svc.budget} tokens"
        )
        if lat:
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"latency p50 {statistics.median(lat):.1f}s p95 {p95:.1f}s")
        print("prompt tokens per review:", [r.prompt_tokens for r in results])
        print("completion tokens per review:", [r.completion_tokens for r in results])
        shares = [r.cached_share for r in results[1:] if r.cached_share is not None]
        if shares:
            print(
                f"cached share on consecutive reviews: mean {statistics.mean(shares):.2f} "
                f"min {min(shares):.2f} ({[round(s, 2) for s in shares]})"
            )
        if args.no_judgement:
            return
        # Judgement over the scenarios: does the model name the expected category / a candidate?
        hit_cat = hit_act = valid = 0
        d = logs / "scen"
        d.mkdir()
        for name in scenarios():
            sc = load(name)
            src, snap = write_export(sc, d)
            lines, err = await replay_review(cfg, src, snap, no_model=False)
            k = by_kind(lines)
            model_f = [f for f in k["finding"] if f["layer"] == "review"]
            model_p = [p for p in k["proposal"] if p["source"] == "review"]
            valid += "review ok" in err
            hit_cat += any(f["category"] == sc["expect"]["category"] for f in model_f)
            hit_act += any(p["action"] in sc["expect"]["candidates"] and p["decision"] != "refuse" for p in model_p)
        n = len(scenarios())
        print(
            f"judgement over {n} scenarios: valid answers {valid}/{n}, expected category named {hit_cat}/{n}, "
            f"a required candidate proposed {hit_act}/{n}"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--reviews", type=int, default=6)
    ap.add_argument("--no-judgement", action="store_true", help="latency, tokens and cache figures only")
    asyncio.run(main(ap.parse_args()))
