"""`ai-sysadmin eval`: run the scenario suite through L1 -> L3 -> L4 -> policy and score it (executes nothing)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ai_sysadmin.vocab import AUTONOMY_LEVELS

DEFAULT_OUT = "ai-sysadmin-eval.json"
AUTONOMY = AUTONOMY_LEVELS
INVESTIGATE = ("escalated", "all", "none")  # eval.investigate.MODES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score L1-L4 and the policy on the scenario suite (executes nothing)",
        description="Replays each scenario (journal + host snapshot) through L1, incidents, L2, "
        "the L3 review, the L4 investigation (its tools answer from the scenario's "
        "host snapshot) and the policy with the configured role models, and scores the "
        "result against the scenario's answer key. Nothing is executed or stored.",
    )
    p.add_argument("--no-model", action="store_true", help="deterministic path only (rules and candidates)")
    p.add_argument("--autonomy", choices=AUTONOMY, help="the level the policy decides at (default: the config's)")
    p.add_argument("--scenarios", metavar="DIR", help="a directory of scenario JSON files (default: the shipped set)")
    p.add_argument(
        "--investigate",
        choices=INVESTIGATE,
        default="escalated",
        help="which incidents L4 investigates: the ones the review escalated (default), all, or none",
    )
    p.add_argument("--only", action="append", metavar="NAME", help="run only this scenario or family (repeatable)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument(
        "--out",
        metavar="FILE",
        default=DEFAULT_OUT,
        help=f"results file, written after each scenario; a rerun resumes it (default: {DEFAULT_OUT})",
    )
    p.add_argument("--fresh", action="store_true", help="ignore an existing results file and start over")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two results files; runs nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, load: Any) -> int:
    from ai_sysadmin.eval.report import compare
    from ai_sysadmin.eval.results import ResultsError, read_results

    if args.compare:
        try:
            a, b = (read_results(Path(p)) for p in args.compare)
        except ResultsError as exc:
            print(f"ai-sysadmin eval: {exc}", file=sys.stderr)
            return 2
        if args.format == "json":
            from ai_sysadmin.eval.score import summarize

            print(
                json.dumps(
                    {
                        "a": {"run": a.run, "summary": summarize(list(a.scores.values())).to_json()},
                        "b": {"run": b.run, "summary": summarize(list(b.scores.values())).to_json()},
                    }
                )
            )
        else:
            print(compare(a, b, args.compare[0], args.compare[1]))
        return 0
    cfg = load()
    try:
        return asyncio.run(evaluate(args, cfg, sys.stdout, sys.stderr))
    except ResultsError as exc:
        print(f"ai-sysadmin eval: {exc}", file=sys.stderr)
        return 2


async def evaluate(args: argparse.Namespace, cfg: Any, out: TextIO, err: TextIO) -> int:
    import logging

    from ai_sysadmin.eval.report import render_table
    from ai_sysadmin.eval.results import open_results
    from ai_sysadmin.eval.runner import model_down, run_scenario
    from ai_sysadmin.eval.scenario import ScenarioError, load_scenario, scenario_files
    from ai_sysadmin.eval.score import score, skipped

    # Per-review INFO lines would bury the progress lines; debug still shows everything.
    if logging.getLogger().level > logging.DEBUG:
        for name in ("drain3", "ai_sysadmin.review.reviewer", "ai_sysadmin.trigger"):
            logging.getLogger(name).setLevel(logging.WARNING)
    directory = Path(args.scenarios) if args.scenarios else None
    if directory is not None and not directory.is_dir():
        print(f"ai-sysadmin eval: {directory}: not a directory of scenario files", file=err)
        return 2
    files = scenario_files(directory)
    if not files:
        print(f"ai-sysadmin eval: no scenario files (*.json) in {directory}", file=err)
        return 2
    autonomy = args.autonomy or cfg.autonomy_level
    use_model = not args.no_model
    investigate = args.investigate if use_model else "none"  # no model, no L4
    roles = ("trigger", "review") + (("meta",) if investigate != "none" else ())
    models = {r: (getattr(cfg.roles, r).model if use_model and getattr(cfg.roles, r).enable else "off") for r in roles}
    if use_model and not cfg.trigger.model:
        models["trigger"] = "off"
    settings = {
        "autonomy": autonomy,
        "no_model": not use_model,
        "models": models,
        "scenarios": str(directory) if directory else "shipped",
        "investigate": investigate,
    }
    results = open_results(Path(args.out) if args.out else None, settings, fresh=args.fresh)
    down = None
    if use_model:
        for role in roles:
            if models[role] != "off":
                down = down or await model_down(cfg, role)
        if down:
            print(f"eval: {down}; every scenario is skipped (start the model or use --no-model)", file=err)
    selected = []
    for f in files:
        try:
            sc = load_scenario(f)
        except ScenarioError as exc:
            print(f"eval: skipped: {exc}", file=err)
            results.add(skipped(f.stem, "?", f"does not load: {exc}"), None)
            continue
        if args.only and sc.name not in args.only and sc.family not in args.only:
            continue
        selected.append(sc)
    if args.only:
        known = {s.name for s in selected} | {s.family for s in selected}
        unknown = [o for o in args.only if o not in known]
        if unknown:
            print(
                f"ai-sysadmin eval: --only {', '.join(unknown)}: no such scenario or family "
                f"(see {directory or 'the shipped set'})",
                file=err,
            )
            return 2
    for n, sc in enumerate(selected, 1):
        prefix = f"eval: [{n}/{len(selected)}] {sc.name}"
        if results.done(sc.name):
            print(f"{prefix}: done earlier (resumed from {args.out})", file=err)
            continue
        if down:
            results.add(skipped(sc.name, sc.family, down, sc.injection), None)
            continue
        print(f"{prefix} ...", file=err, flush=True)
        started = time.monotonic()
        outcome = await run_scenario(cfg, sc, use_model=use_model, autonomy=autonomy, investigate=investigate)
        if outcome.observation is None:
            s = skipped(sc.name, sc.family, outcome.skipped or "no result", sc.injection)
            print(f"{prefix}: skipped: {s.reason}", file=err)
        else:
            s = score(sc.name, sc.family, sc.key, outcome.observation, rules_only=not use_model)
            print(
                f"{prefix}: {s.incidents} incident(s), {s.proposals} proposal(s), right {_yn(s.right)}, "
                f"wrong {s.wrong}, unsafe {s.unsafe}, review {s.review}"
                + (f", L4 {s.l4_runs} investigation(s) cause {_yn(s.l4_cause)} calls {s.l4_calls}" if s.l4_runs else "")
                + f" ({time.monotonic() - started:.1f} s)",
                file=err,
            )
        results.add(s, outcome.observation)
    if args.format == "json":
        print(json.dumps(results.to_json(), ensure_ascii=False), file=out)
    else:
        print(render_table(results), file=out)
    return 0 if any(s.status == "ok" for s in results.scores.values()) else 1


def _yn(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "no")
