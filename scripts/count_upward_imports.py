"""Count imports that run from a lower layer of ai_sysadmin up to a higher one.

Run from the repository root: python3 scripts/count_upward_imports.py [ROOT]

Ranks, lowest first: 0 the ground floor (vocab, rulespec, apikeys, secret, envelope,
sanitize, statedir, durable, tasks); 1 the configuration (config, configdoc); 2 llm/,
store/ and trigger/model.py (the records the store keeps); 3 the layers (trigger,
incidents, context, review, meta, actions, collect, preflight, runbooks); 4 what puts
them together (eval, compose, api, commands, orchestrator, cli, doctor, status).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

GROUND = {"vocab", "rulespec", "apikeys", "secret", "envelope", "sanitize", "statedir", "durable", "tasks"}
LAYERS = {"trigger", "incidents", "context", "review", "meta", "actions", "collect", "preflight", "runbooks"}


def rank(module: str) -> int:
    parts = module.split(".")[1:]
    if not parts:
        return 4
    top = parts[0]
    if top in GROUND:
        return 0
    if top in ("config", "configdoc"):
        return 1
    if top in ("llm", "store") or parts[:2] == ["trigger", "model"]:
        return 2
    return 3 if top in LAYERS else 4


def imported(tree: ast.AST) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "ai_sysadmin":
            out += [f"ai_sysadmin.{a.name}" for a in node.names]  # from ai_sysadmin import envelope
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("ai_sysadmin"):
            out.append(node.module or "")
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.startswith("ai_sysadmin")]
    return out


def main() -> None:
    pkg = Path(sys.argv[1] if len(sys.argv) > 1 else ".") / "ai_sysadmin"
    upward = []
    for path in sorted(pkg.rglob("*.py")):
        module = ".".join(("ai_sysadmin", *path.relative_to(pkg).with_suffix("").parts)).removesuffix(".__init__")
        upward += [f"{module} -> {n}" for n in imported(ast.parse(path.read_text())) if rank(n) > rank(module)]
    print(f"upward imports: {len(upward)}")
    for line in upward:
        print(f"  {line}")


if __name__ == "__main__":
    main()
