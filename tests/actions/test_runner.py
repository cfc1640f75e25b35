"""The argv runner: no shell, bounded output, a timeout that kills the whole process group."""

from __future__ import annotations

import asyncio
import sys

from ai_sysadmin.actions.runner import child_env, run_argv


def test_output_is_capped_and_the_rest_drained() -> None:
    r = asyncio.run(
        run_argv([sys.executable, "-c", "import sys; sys.stdout.write('x' * 3_000_000)"], timeout=60, cap=4096)
    )
    assert r.ok and r.truncated and len(r.stdout) == 4096


def test_arguments_are_not_interpreted_by_a_shell(tmp_path) -> None:
    target = tmp_path / "pwned"
    r = asyncio.run(run_argv(["echo", f"a; touch {target}", "$(id)"], timeout=10, cap=1024))
    assert r.ok and r.stdout == f"a; touch {target} $(id)\n" and not target.exists()


def test_timeout_kills_the_process_group() -> None:
    r = asyncio.run(
        run_argv(
            [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"],
            timeout=1.0,
            cap=1024,
        )
    )
    assert r.exit_status is None and "timed out" in (r.error or "")


def test_missing_program_and_minimal_environment() -> None:
    r = asyncio.run(run_argv(["no-such-program-xyz"], timeout=5, cap=1024))
    assert not r.ok and "not found" in (r.error or "")
    env = child_env({"PATH": "/bin", "PGPASSWORD": "secret", "CREDENTIALS_DIRECTORY": "/run/c", "NIX_STORE_DIR": "/s"})
    assert env == {"PATH": "/bin", "NIX_STORE_DIR": "/s"}
