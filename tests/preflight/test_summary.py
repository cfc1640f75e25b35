"""The review model's summary on a real tiny llama-server (`llama_review`) and real Nix
generations: the answer's structure, a final verdict never below the deterministic one,
and a model that does not answer ending within the timeout with a note and no block."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import unit_is_protected
from ai_sysadmin.preflight import summary
from ai_sysadmin.preflight.check import Report, SwitchAction, run_preflight
from ai_sysadmin.preflight.verdict import Verdict
from tests.conftest import role_config
from tests.preflight.conftest import Generations

REPO = Path(__file__).resolve().parents[2]
ORDER = {"ok": 0, "warn": 1, "block": 2}


def report(gens: Generations, new: str, tmp: Path) -> Report:
    return run_preflight(
        new,
        gens.gen1,
        SwitchAction.SWITCH,
        lambda u: unit_is_protected(u, ()),
        nix=gens.store.nix,
        env={},
        proc_net=tmp,
    )


def test_model_summary_never_lowers_the_verdict(llama_review: Any, generations: Generations, tmp_path: Path) -> None:
    role = role_config(llama_review, "review")
    for new in (generations.block, generations.ok):
        det = report(generations, new, tmp_path)
        model = summary.ask(role, det, 30)
        assert model.status is summary.ModelStatus.OK, model.note
        assert isinstance(model.summary, str) and isinstance(model.recommendation, str)
        assert model.verdict in ORDER
        final = summary.apply(det, model, explicit=True)
        assert ORDER[final.verdict.value] == max(ORDER[det.verdict.value], ORDER[model.verdict])  # type: ignore[index]
        assert final.to_json()["model"]["verdict"] == model.verdict
    assert final.verdict.value != "ok" or model.verdict == "ok"


@pytest.fixture()
def silent_server() -> Iterator[str]:
    """A socket that accepts connections and never answers: a hung (SIGSTOPped-like) model server."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_silent_or_absent_model_is_a_note_never_a_block(
    silent_server: str, generations: Generations, tmp_path: Path
) -> None:
    det = report(generations, generations.ok, tmp_path)
    assert det.verdict is Verdict.OK
    role = role_config(None, "review", url=silent_server)
    t0 = time.monotonic()
    model = summary.ask(role, det, 2.0)
    assert time.monotonic() - t0 < 4 and model.status is summary.ModelStatus.TIMEOUT
    final = summary.apply(det, model, explicit=True)
    assert final.verdict is Verdict.WARN  # at least warn, and the timeout alone never blocks
    assert "no model summary: the review model gave no summary within 2 s" in final.decision.reasons
    # Nothing listening: asked for explicitly -> warn; the role merely enabled -> a note only.
    gone = summary.ask(role_config(None, "review", url=f"http://127.0.0.1:{free_port()}"), det, 2.0)
    assert gone.status is summary.ModelStatus.UNREACHABLE
    assert summary.apply(det, gone, explicit=True).verdict is Verdict.WARN
    assert summary.apply(det, gone, explicit=False).verdict is Verdict.OK
    # A block stays a block (from the check, not from the timeout).
    blocked = report(generations, generations.block, tmp_path)
    assert summary.apply(blocked, model, explicit=True).verdict is Verdict.BLOCK


def test_lean_entry_point_asks_only_with_model(llama_review: Any, generations: Generations, tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "database": {"socket_dir": str(tmp_path / "nosock")},
                "review": {"preflight_model_timeout": 30},  # the most it allows: a loaded CI host
                "roles": {"review": {"url": llama_review.url, "model": llama_review.alias}},
            }
        )
    )

    def lean(*extra: str) -> dict[str, Any]:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "ai_sysadmin.commands.preflight",
                generations.warn,
                "--current",
                generations.gen1,
                "--nix",
                generations.store.nix,
                "--format",
                "json",
                "--config",
                str(cfg),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            env={**generations.store.full_env(), "PYTHONPATH": str(REPO)},
        )
        assert r.stdout.strip(), r.stderr
        return json.loads(r.stdout)

    assert lean()["model"] is None  # the pre-switch check without the module option: no model
    rep = lean("--model")
    assert rep["model"]["status"] == "ok", rep["model"]["note"]
    assert set(rep["model"]) >= {"summary", "recommendation", "verdict"}
    assert ORDER[rep["verdict"]] >= ORDER["warn"]  # the deterministic verdict of this switch is warn
