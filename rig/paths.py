"""Where scripts/provision.sh put the real parts (read from the environment or rig.env)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


class PartMissing(RuntimeError):
    """A real part is not provisioned on this machine; the message says which and how to fix."""


def cache_dir() -> Path:
    base = os.environ.get("AI_SYSADMIN_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ai-sysadmin"
    )
    return Path(base)


def read_env_file(name: str) -> dict[str, str]:
    """KEY=VALUE lines that the provisioning scripts write into the cache (rig.env, nix.env)."""
    env: dict[str, str] = {}
    f = cache_dir() / name
    if f.exists():
        for line in f.read_text().splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k.strip()] = v.strip()
    return env


def nix_env() -> dict[str, str]:
    """What scripts/provision-nix.sh recorded (nix.env): where nix-bin and the nspawn root are."""
    return read_env_file("nix.env")


def nix_tool(name: str) -> str | None:
    """A Nix command: from the provisioned nix-bin first, else from PATH; None when neither has it."""
    d = nix_env().get("AI_SYSADMIN_NIX_BIN")
    if d and (Path(d) / name).exists():
        return str(Path(d) / name)
    return shutil.which(name)


def _rig_env() -> dict[str, str]:
    env = read_env_file("rig.env")
    env.update({k: v for k, v in os.environ.items() if k.startswith("AI_SYSADMIN_")})
    return env


@dataclass(frozen=True)
class RigPaths:
    llama_server: Path | None
    model: Path | None
    chat_template: Path | None
    pg_bindir: Path | None
    journal_remote: Path | None
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (scripts/provision-judge.sh): a model that can judge.
    judge_model: Path | None = None

    def need(self, attr: str) -> Path:
        value = getattr(self, attr)
        if value is None or not Path(value).exists():
            raise PartMissing(
                f"{attr} not provisioned (run scripts/provision.sh"
                f"{' or scripts/provision-judge.sh' if attr == 'judge_model' else ''})"
            )
        return Path(value)


def rig_paths() -> RigPaths:
    env = _rig_env()

    def p(key: str, fallback: str | None = None) -> Path | None:
        v = env.get(key) or fallback
        return Path(v) if v else None

    pg = env.get("AI_SYSADMIN_PG_BINDIR")
    if not pg:
        cands = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        pg = str(cands[-1]) if cands else None
    jr = env.get("AI_SYSADMIN_JOURNAL_REMOTE") or next(
        (
            c
            for c in ("/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote")
            if os.path.exists(c)
        ),
        None,
    )
    return RigPaths(
        llama_server=p("AI_SYSADMIN_LLAMA_SERVER", shutil.which("llama-server")),
        model=p("AI_SYSADMIN_TEST_MODEL"),
        chat_template=p("AI_SYSADMIN_CHAT_TEMPLATE"),
        pg_bindir=Path(pg) if pg else None,
        journal_remote=Path(jr) if jr else None,
        judge_model=p("AI_SYSADMIN_JUDGE_MODEL"),
    )
