"""`ai-sysadmin preflight` on a large diff: how long the whole check takes.

Two generations built in a throwaway local Nix store (rig/generation.nix):
each has --paths store paths besides the toplevel (half packages, half unit files);
between them half the packages change version and size and half the units change
their ExecStart, a protected unit restarts and the kernel changes.  The check runs as
the pre-switch check does (CLI in a fresh process: interpreter start, imports, real
`nix store diff-closures`, unit plan, accounts, verdict): as `ai-sysadmin-preflight`
(the pre-switch check's lean entry point) and as `ai-sysadmin preflight` (the full CLI,
which imports every subcommand); and in-process (run_preflight, without the interpreter
start).  Prints median and max of --runs.

Target (issue 20): at most 3 s for 2,000 generated store paths, no model.

--model: also time the pre-switch entry point with `--model` against the rig's tiny
llama-server (SmolLM2-135M, Q4_1) serving the review role, started and stopped here.

    set -a; . ~/.cache/ai-sysadmin/rig.env; set +a
    $AI_SYSADMIN_VENV/bin/python -m bench.preflight [--paths 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ai_sysadmin.config import DEFAULT_PROTECTED_UNITS, unit_is_protected
from ai_sysadmin.preflight.check import SwitchAction, run_preflight
from rig.nixstore import BASE, NixStore, unit

REPO = Path(__file__).resolve().parent.parent


def spec(name: str, paths: int, changed: bool) -> dict:
    n = paths // 2
    s = json.loads(json.dumps(BASE))
    s["name"] = name
    for i in range(n):
        v = 2 if changed and i % 2 == 0 else 1
        s["units"][f"svc{i:04d}.service"] = unit(f"service {i}", f"/bin/svc{i} --v{v}")
    s["wants"] = [*s["wants"], *(f"svc{i:04d}.service" for i in range(n))]
    s["packages"] = [
        {
            "name": f"pkg{i:04d}",
            "version": f"1.{2 if changed and i % 2 == 0 else 1}",
            "kib": 2 if changed and i % 2 == 0 else 1,
        }
        for i in range(n)
    ]
    if changed:
        s["units"]["sshd.service"] = unit("SSH daemon", "/bin/sshd -D -e")
        s["kernel"] = "6.6.2"
    return s


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", action="store_true", help="also time --model with the tiny review model")
    args = ap.parse_args()
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-preflight-") as tmp:
        if args.model:
            from rig.llama import tiny_server

            server = tiny_server("review", Path(tmp))
            server.start()
        try:
            return _bench(args, Path(tmp), server)
        finally:
            if server is not None:
                server.stop()


def _bench(args: argparse.Namespace, tmp: Path, server: Any) -> int:
    store = NixStore(tmp / "nix")
    os.environ.update(store.env)
    t = time.monotonic()
    current, new = store.build(spec("current", args.paths, False)), store.build(spec("new", args.paths, True))
    build_s = time.monotonic() - t
    closure = subprocess.run(
        [store.nix, "--extra-experimental-features", "nix-command", "path-info", "-r", new],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    protected = DEFAULT_PROTECTED_UNITS
    inproc: list[float] = []
    lean: list[float] = []
    cli: list[float] = []
    with_model: list[float] = []
    model_status: list[str] = []
    cfg = tmp / "model-config.json"  # the review role on the tiny server; no database
    if server is not None:
        cfg.write_text(
            json.dumps(
                {
                    "state_dir": str(tmp / "state"),
                    "database": {"socket_dir": str(tmp)},
                    "roles": {"review": {"url": server.url, "model": server.alias, "context_size": 2048}},
                }
            )
        )  # the tiny server: 4096 over 2 slots
    report = None
    for _ in range(args.runs):
        t = time.monotonic()
        report = run_preflight(
            new, current, SwitchAction.SWITCH, lambda u: unit_is_protected(u, protected), nix=store.nix
        )
        inproc.append(time.monotonic() - t)
        for entry, times in (
            (["-m", "ai_sysadmin.commands.preflight"], lean),
            (["-m", "ai_sysadmin", "preflight"], cli),
        ):
            t = time.monotonic()
            r = subprocess.run(
                [sys.executable, *entry, new, "--current", current, "--nix", store.nix, "--format", "json"],
                capture_output=True,
                text=True,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO), "AI_SYSADMIN_CONFIG": ""},
            )
            times.append(time.monotonic() - t)
            assert r.returncode == 1, r.stderr  # warn: sshd restarts
        if server is not None:
            t = time.monotonic()
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ai_sysadmin.commands.preflight",
                    new,
                    "--current",
                    current,
                    "--nix",
                    store.nix,
                    "--format",
                    "json",
                    "--model",
                    "--config",
                    str(cfg),
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
            )
            with_model.append(time.monotonic() - t)
            m = json.loads(r.stdout)["model"]
            model_status.append(m["status"] + (f": {m['note']}" if m["note"] else ""))
    assert report is not None and report.closure is not None
    print(
        json.dumps(
            {
                "store_paths_in_new_closure": len(closure),
                "build_s": round(build_s, 1),
                "packages_changed": len(report.closure.changes),
                "units_planned": len(report.units),
                "verdict": report.verdict.value,
                "in_process_s": {"median": round(statistics.median(inproc), 3), "max": round(max(inproc), 3)},
                "pre_switch_entry_s": {"median": round(statistics.median(lean), 3), "max": round(max(lean), 3)},
                "full_cli_s": {"median": round(statistics.median(cli), 3), "max": round(max(cli), 3)},
                "target_s": 3.0,
                "pre_switch_within_target": max(lean) <= 3.0,
                **(
                    {
                        "pre_switch_with_model_s": {
                            "median": round(statistics.median(with_model), 3),
                            "max": round(max(with_model), 3),
                        },
                        "model_status": model_status,
                        "model": "SmolLM2-135M-Instruct Q4_1 (review role)",
                    }
                    if with_model
                    else {}
                ),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
