"""scripts/provision-judge.sh on a cache of its own: it pins the judge model and edits rig.env in place.

No download here: the cache is seeded with the provisioned model (or a wrong file), so the
script's cached path runs -- the one every provisioning after the first takes.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from rig.paths import PartMissing, rig_paths
from rig.require import need
from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "provision-judge.sh"
MODEL_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def run(cache: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AI_SYSADMIN_")}
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120, env={**env, "AI_SYSADMIN_CACHE": str(cache)}
    )


def test_cached_model_is_recorded_in_rig_env(tmp_path: Path) -> None:
    try:
        model = rig_paths().need("judge_model")
    except PartMissing as exc:
        need(str(exc))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / MODEL_FILE).symlink_to(model)
    (tmp_path / "rig.env").write_text("AI_SYSADMIN_TEST_MODEL=/x/tiny.gguf\nAI_SYSADMIN_JUDGE_MODEL=/old\n")
    for _ in range(2):  # idempotent
        r = run(tmp_path)
        assert r.returncode == 0, r.stderr
    lines = (tmp_path / "rig.env").read_text().splitlines()
    assert lines == ["AI_SYSADMIN_TEST_MODEL=/x/tiny.gguf", f"AI_SYSADMIN_JUDGE_MODEL={tmp_path}/models/{MODEL_FILE}"]


def test_a_cached_file_of_another_size_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / MODEL_FILE).write_bytes(b"GGUF" + b"\0" * 1000)
    (tmp_path / "rig.env").write_text("AI_SYSADMIN_TEST_MODEL=/x/tiny.gguf\n")
    r = run(tmp_path)
    assert r.returncode == 1 and "not the pinned judge model" in r.stderr
    assert (tmp_path / "rig.env").read_text() == "AI_SYSADMIN_TEST_MODEL=/x/tiny.gguf\n"  # untouched
