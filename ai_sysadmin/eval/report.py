"""Eval output for people: the per-scenario table, the summary, and the comparison of two runs."""

from __future__ import annotations

from typing import Any

from ai_sysadmin.eval.results import Results
from ai_sysadmin.eval.score import ScenarioScore, Summary, summarize

COLUMNS = (
    "scenario",
    "det",
    "corr",
    "cause",
    "right",
    "wrong",
    "unsafe",
    "inj",
    "L1 s",
    "rev s",
    "review",
    "L4",
    "L4 cause",
    "calls",
    "rep",
    "grnd",
    "L4 s",
)


def _mark(v: bool | None) -> str:
    return "-" if v is None else ("yes" if v else "NO")


def row(s: ScenarioScore) -> list[str]:
    if s.status != "ok":
        return [s.name, "skipped: " + (s.reason or ""), *[""] * (len(COLUMNS) - 2)]
    return [
        s.name,
        _mark(s.detected),
        _mark(s.correlated),
        _mark(s.root_cause),
        _mark(s.right),
        str(s.wrong),
        str(s.unsafe),
        "-" if s.injection is None else str(s.injection),
        f"{s.l1_s:.2f}",
        f"{s.review_s:.2f}",
        s.review,
        *_l4_cells(s),
    ]


def _l4_cells(s: ScenarioScore) -> list[str]:
    """L4: investigations, cause, tool calls, repeated calls, grounded/cited evidence ids, seconds."""
    if not s.l4_runs:
        return ["-"] * 6
    return [
        str(s.l4_runs),
        _mark(s.l4_cause),
        str(s.l4_calls),
        str(s.l4_repeated),
        f"{s.l4_grounded}/{s.l4_cited}",
        f"{s.l4_s:.1f}",
    ]


def _table(rows: list[list[str]], header: tuple[str, ...]) -> str:
    full = [r for r in rows if not r[1].startswith("skipped: ")]
    widths = [max(len(r[i]) for r in [list(header), *full]) for i in range(len(header))]
    widths[0] = max([widths[0], *(len(r[0]) for r in rows)])
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    for r in rows:
        cells = r[:2] if r[1].startswith("skipped: ") else r
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip())
    return "\n".join(lines)


def summary_lines(m: Summary) -> list[str]:
    return [
        f"scenarios {m.scenarios} (scored {m.scored}, skipped {m.skipped})",
        f"detected {m.detected}/{m.detected_of}  correlated {m.correlated}/{m.correlated_of}  "
        f"root cause {m.root_cause}/{m.root_cause_of}  right {m.right}/{m.right_of}",
        f"wrong proposals {m.wrong}  never-proposals {m.never}  unsafe (wrong and executed) {m.unsafe}  "
        f"injection success {m.injection_success}/{m.injection_scenarios}",
        f"mean latency: L1 {m.l1_s_mean:.2f} s, review (incidents+L2+L3+policy) {m.review_s_mean:.2f} s",
        *_l4_lines(m),
    ]


def _l4_lines(m: Summary) -> list[str]:
    if not m.l4_investigations:
        return ["L4: no investigation ran"]
    return [
        f"L4: {m.l4_investigations} investigation(s) in {m.l4_scenarios} scenario(s), root cause named "
        f"{m.l4_cause_hits}/{m.l4_cause_of}, proposals {m.l4_proposals} (wrong {m.l4_wrong})",
        f"L4 tools: {m.l4_calls} calls ({m.l4_repeated} repeated), {m.l4_tokens_mean:.0f} meta tokens per "
        f"scenario, evidence ids grounded {m.l4_grounded}/{m.l4_cited}, mean latency {m.l4_s_mean:.1f} s",
    ]


def render_table(results: Results) -> str:
    scores = list(results.scores.values())
    run = results.run
    head = f"ai-sysadmin eval: autonomy {run.get('autonomy')}, " + (
        "no model (deterministic path)"
        if run.get("no_model")
        else f"trigger model {run.get('models', {}).get('trigger')}, "
        f"review model {run.get('models', {}).get('review')}, "
        f"meta model {run.get('models', {}).get('meta', 'not run')} "
        f"(investigate: {run.get('investigate', 'none')})"
    )
    notes = sorted({s.l4_note for s in scores if s.status == "ok" and s.l4_note})
    wrong = [f"  {s.name}: wrong {', '.join(s.wrong_actions)}" for s in scores if s.wrong_actions]
    return "\n".join(
        [
            head,
            "",
            _table([row(s) for s in scores], COLUMNS),
            "",
            *summary_lines(summarize(scores)),
            *(["", "wrong proposals:", *wrong] if wrong else []),
            *(["", "L4 notes:", *(f"  {n}" for n in notes)] if notes else []),
        ]
    )


def compare(a: Results, b: Results, a_name: str, b_name: str) -> str:
    """Side by side: per scenario where the two runs differ, and both summaries."""
    names = list(dict.fromkeys(list(a.scores) + list(b.scores)))
    keys = (
        "detected",
        "correlated",
        "root_cause",
        "right",
        "wrong",
        "unsafe",
        "injection",
        "l4_runs",
        "l4_cause",
        "l4_calls",
        "l4_repeated",
        "l4_grounded",
        "l4_cited",
    )
    diffs: list[list[str]] = []
    for n in names:
        sa, sb = a.scores.get(n), b.scores.get(n)
        if sa is None or sb is None or sa.status != "ok" or sb.status != "ok":
            if (sa and sa.status) != (sb and sb.status):
                diffs.append([n, "status", sa.status if sa else "absent", sb.status if sb else "absent"])
            continue
        for k in keys:
            va, vb = getattr(sa, k), getattr(sb, k)
            if va != vb:
                diffs.append([n, k, _fmt(va), _fmt(vb)])
    ma, mb = summarize(list(a.scores.values())), summarize(list(b.scores.values()))
    out = [f"A = {a_name}: {_label(a.run)}", f"B = {b_name}: {_label(b.run)}", ""]
    out.append(_table(diffs, ("scenario", "measure", "A", "B")) if diffs else "no per-scenario differences")
    out += ["", "A: " + " | ".join(summary_lines(ma)), "B: " + " | ".join(summary_lines(mb))]
    return "\n".join(out)


def _fmt(v: Any) -> str:
    return _mark(v) if isinstance(v, bool) or v is None else str(v)


def _label(run: dict[str, Any]) -> str:
    if run.get("no_model"):
        return f"autonomy {run.get('autonomy')}, no model"
    m = run.get("models", {})
    return (
        f"autonomy {run.get('autonomy')}, trigger {m.get('trigger')}, review {m.get('review')}, "
        f"meta {m.get('meta', 'not run')} (investigate: {run.get('investigate', 'none')})"
    )
