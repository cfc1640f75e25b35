"""Count SQL statements in ai_sysadmin/, inside and outside store/ (migrations.py excluded).

A statement is a string literal (plain or the leading part of an f-string; docstrings and other
bare string statements excluded) whose first non-blank word is an upper-case SQL verb.
Run from the repository root: python3 scripts/count_sql.py
"""

import ast
import collections
import pathlib
import re

VERB = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|CREATE|ALTER|DROP|GRANT|REVOKE|TRUNCATE|LOCK|COPY)\b")


def _texts(tree: ast.AST) -> list[str]:
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    parts |= {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}  # docstrings
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            out.append(str(node.values[0].value))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
            out.append(node.value)
    return out


def main() -> None:
    inside: collections.Counter[str] = collections.Counter()
    outside: collections.Counter[str] = collections.Counter()
    for path in sorted(pathlib.Path("ai_sysadmin").rglob("*.py")):
        if path.name == "migrations.py":
            continue
        n = sum(1 for t in _texts(ast.parse(path.read_text())) if VERB.match(t))
        if n:
            (inside if path.parts[1] == "store" else outside)[str(path)] = n
    for name, n in outside.most_common():
        print(f"{n:4d}  {name}")
    print(f"outside store/: {sum(outside.values())} statements in {len(outside)} modules")
    print(f"inside  store/: {sum(inside.values())} statements in {len(inside)} modules")


if __name__ == "__main__":
    main()
