#!/usr/bin/env python3
"""Generate the option reference of docs/nixos.md from module.nix.

    python3 nix/checks/gen-options-doc.py            # rewrite the generated section
    python3 nix/checks/gen-options-doc.py --check    # exit 1 when the doc is stale

The section between the BEGIN/END markers is replaced; the rest of the page is prose.
Options are read with nix-instantiate from nix/checks/options.nix (nixpkgs STAND-IN).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "nixos.md"
BEGIN = "<!-- BEGIN GENERATED OPTIONS (nix/checks/gen-options-doc.py) -->"
END = "<!-- END GENERATED OPTIONS -->"


def options(nix_instantiate: str) -> list[dict]:
    env = {**os.environ, "NIX_CONFIG": "build-users-group ="}
    r = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", str(REPO / "nix/checks/options.nix")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if r.returncode != 0:
        sys.exit(r.stderr)
    return json.loads(r.stdout)


def block(value: str) -> str:
    if "\n" in value:
        return "\n```nix\n" + value.strip("\n") + "\n```\n"
    return f" `{value}`\n"


def render(opts: list[dict]) -> str:
    out = [BEGIN, "", "Generated from `module.nix`; do not edit by hand.", ""]
    for o in opts:
        out.append(f"### `{o['name']}`")
        out.append("")
        desc = " ".join(line.strip() for line in o["description"].strip().splitlines())
        out.append(desc)
        out.append("")
        out.append(f"*Type:* {o['type']}" + (" (read-only)" if o["readOnly"] else ""))
        out.append("")
        if o["default"] is not None:
            out.append("*Default:*" + block(o["default"]).rstrip("\n"))
            out.append("")
        if o["example"] is not None:
            out.append("*Example:*" + block(o["example"]).rstrip("\n"))
            out.append("")
    out.append(END)
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--nix-instantiate", default=shutil.which("nix-instantiate") or "nix-instantiate")
    args = ap.parse_args()
    generated = render(options(args.nix_instantiate))
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + generated + text[end:]
    if args.check:
        if new != text:
            print(f"{DOC.relative_to(REPO)} is stale: run python3 nix/checks/gen-options-doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
