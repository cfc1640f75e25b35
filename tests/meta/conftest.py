"""Fixtures for L4: a meta llama-server with room for the tool catalog, configs, journals, a store.

`meta_server` is the same real part as the shared `llama_meta` fixture (llama-server,
SmolLM2-135M, --jinja with the Qwen2.5 template) with one slot of 8192 tokens: the shared
fixture's two 2048-token slots cannot hold the tool catalog (about 3000 tokens) plus
results.  The tiny model is made to emit tool calls with `tool_choice: "required"` and an
assistant prefill `<tool_call>\\n`; the tests assert structure, never judgement.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ai_sysadmin.config import Config, parse_config
from rig.llama import LlamaServer, tiny_server
from rig.paths import PartMissing
from rig.require import need

META_CTX = 8192
# Small generation budgets keep each tiny-model turn to a second or two.  With 48 tokens the
# tiny model's diagnosis is usually cut (-> the recorded fallback diagnosis); tests that
# need the model's own diagnosis and a streamed answer set FULL_DIAGNOSIS.
TINY_META = {
    "tool_choice": "required",
    "prefill": "<tool_call>\n",
    "step_max_tokens": 96,
    "answer_max_tokens": 0,
    "diagnosis_max_tokens": 48,
    "deadline_seconds": 240,
}
FULL_DIAGNOSIS = {"diagnosis_max_tokens": 700, "answer_max_tokens": 32}


def start_meta_server(logs: Path, alias: str = "meta") -> LlamaServer:
    try:
        server = tiny_server(alias, logs, tools=True, ctx_size=META_CTX, parallel=1)
    except PartMissing as exc:
        need(str(exc))
        raise
    return server.start()


@pytest.fixture(scope="session")
def meta_server(rig_logs: Path) -> Iterator[LlamaServer]:
    server = start_meta_server(rig_logs)
    try:
        yield server
    finally:
        server.stop()


def meta_config(
    tmp_path: Path,
    server: LlamaServer | None,
    *,
    url: str | None = None,
    database: dict | None = None,
    meta: dict[str, Any] | None = None,
    **sections: Any,
) -> Config:
    """A validated config whose meta role is `server` (or `url`), with tiny-model loop settings."""
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "roles": {
            "meta": {
                "url": url or server.url,
                "model": server.alias if server else "meta",  # type: ignore[union-attr]
                "timeout": 300,
                "context_size": META_CTX,
                "max_retries": 0,
            }
        },
        "meta": {**TINY_META, **(meta or {})},
        **sections,
    }
    if database is not None:
        data["database"] = database
    return parse_config(data, env={})


def journal_entries(unit: str = "myapp.service", n: int = 6) -> list[dict[str, Any]]:
    """A crash loop as journald records it, timestamped now (so `since` filters see it)."""
    now = int(time.time() * 1_000_000) - 60_000_000
    out: list[dict[str, Any]] = []
    for i in range(n):
        out.append(
            {
                "MESSAGE": f"{unit}: Main process exited, code=exited, status=1/FAILURE",
                "PRIORITY": 4,
                "SYSLOG_IDENTIFIER": "systemd",
                "UNIT": unit,
                "_SYSTEMD_UNIT": unit,
                "_PID": 1,
                "__REALTIME_TIMESTAMP": now + i * 1_000_000,
            }
        )
        out.append(
            {
                "MESSAGE": f"{unit}: Failed with result 'exit-code'.",
                "PRIORITY": 3,
                "SYSLOG_IDENTIFIER": "systemd",
                "UNIT": unit,
                "_SYSTEMD_UNIT": unit,
                "_PID": 1,
                "__REALTIME_TIMESTAMP": now + i * 1_000_000 + 500_000,
            }
        )
    out.append(
        {
            "MESSAGE": "Accepted publickey for alice from 10.0.0.5 port 51000",
            "PRIORITY": 6,
            "SYSLOG_IDENTIFIER": "sshd",
            "_SYSTEMD_UNIT": "sshd.service",
            "_PID": 4242,
            "__REALTIME_TIMESTAMP": now + n * 1_000_000,
        }
    )
    return out


@pytest.fixture(scope="session")
def crash_journal(journal_writer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("meta-journal") / f"crash-{uuid.uuid4().hex[:6]}.journal"
    return journal_writer.write(path, journal_entries())


@pytest.fixture()
async def migrated(pg_database: dict[str, Any]):
    """A fresh migrated database: yields (database section, open pool)."""
    from ai_sysadmin.store.db import make_pool
    from ai_sysadmin.store.migrations import migrate

    cfg = parse_config({"database": pg_database}, env={})
    pool = make_pool(cfg.database, max_size=4)
    await pool.open(wait=True, timeout=30)
    await migrate(pool)
    try:
        yield pg_database, pool
    finally:
        await pool.close()


NIX_SYSTEM = """
{ version }:
let
  mk = name: text: derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh";
                                args = [ "-c" "echo ${text} > $out" ]; };
  app = mk "myapp-${version}" "app ${version}";
  lib = mk "libfoo-1.0" "lib";
in derivation {
  name = "nixos-system-test-${version}"; system = builtins.currentSystem; builder = "/bin/sh";
  args = [ "-c" "/bin/mkdir -p $out; echo ${app} ${lib} > $out/refs" ];
}
"""


@pytest.fixture(scope="session")
def nix_profile(tmp_path_factory: pytest.TempPathFactory):
    """A real system profile with two generations in a local store in a temp dir (Debian's nix-bin).

    Each generation is a real store path (built by nix-build with /bin/sh, no nixpkgs)
    whose closure holds `myapp-<version>` and `libfoo-1.0`, so diff-closures has a
    version change to report.  Yields (store URI, profile path, {generation: store path}).
    """
    import os
    import shutil
    import subprocess

    from rig.paths import read_env_file

    bindir = read_env_file("nix.env").get("AI_SYSADMIN_NIX_BIN") or os.path.dirname(shutil.which("nix-build") or "")
    if not bindir or not os.path.exists(os.path.join(bindir, "nix-build")):
        need("nix-build not installed (run scripts/provision-nix.sh)")
    base = tmp_path_factory.mktemp("nix")
    uri = f"local?store={base}/store&state={base}/var&log={base}/log"
    env = {**os.environ, "NIX_CONFIG": "build-users-group =\nsandbox = false\nsubstituters =\nwarn-dirty = false"}
    (base / "system.nix").write_text(NIX_SYSTEM)
    (base / "profiles").mkdir()
    profile = base / "profiles" / "system"
    gens: dict[int, Path] = {}
    for number, version in ((1, "1.0"), (2, "2.0")):
        out = subprocess.run(
            [
                f"{bindir}/nix-build",
                "--store",
                uri,
                str(base / "system.nix"),
                "--argstr",
                "version",
                version,
                "--no-out-link",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        path = Path(out.stdout.strip())
        r = subprocess.run(
            [f"{bindir}/nix-env", "--store", uri, "-p", str(profile), "--set", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        gens[number] = path
    return uri, profile, gens
