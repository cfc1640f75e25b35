"""docs/configuration.md is generated from the configuration models and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel

from ai_sysadmin.config import Config, RoleConfig, Roles
from ai_sysadmin.configdoc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_configuration_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run `ai-sysadmin config docs > docs/configuration.md`"
    )


def test_cli_prints_the_reference_without_a_configuration(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ai_sysadmin", "--config", str(tmp_path / "absent.json"), "config", "docs"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == render()


def test_every_key_is_in_the_reference() -> None:
    doc = render()

    def keys(model: type[BaseModel]) -> list[str]:
        return [
            n
            for n, f in model.model_fields.items()
            if not isinstance(f.annotation, type) or not issubclass(f.annotation, BaseModel)
        ]

    sections = [Config.model_fields[n].annotation for n in Config.model_fields if n not in keys(Config)]
    sections.remove(Roles)  # its keys are the roles, documented as one table (RoleConfig)
    for model in [Config, RoleConfig, *sections]:
        for name in keys(model):  # type: ignore[arg-type]
            assert f"| `{name}` |" in doc, (model, name)
