#!/usr/bin/env bash
# Lint and type-check the checkout (scripts/test.sh runs this before pytest; CI with it).
#
#   scripts/lint.sh                 # ruff check, ruff format --check and mypy, as configured in pyproject.toml
#   scripts/lint.sh TOOL [ARGS...]  # one of them (ruff or mypy) with ARGS: the pre-commit hooks
#
# The tools are the versions pinned in pyproject's `test` extra, from the provisioned
# virtualenv ($AI_SYSADMIN_VENV, else the one rig.env names); without one (`nix develop`),
# from PATH.  Exits non-zero on any finding.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
if [[ -z "${AI_SYSADMIN_VENV:-}" && -f "$CACHE/rig.env" ]]; then
  AI_SYSADMIN_VENV="$(sed -n 's/^AI_SYSADMIN_VENV=//p' "$CACHE/rig.env")"
fi

tool() {
  if [[ -n "${AI_SYSADMIN_VENV:-}" ]]; then
    [[ -x "$AI_SYSADMIN_VENV/bin/$1" ]] \
      || { echo "lint.sh: $AI_SYSADMIN_VENV has no $1 (run scripts/provision.sh: pyproject's test extra installs it)" >&2; exit 2; }
    echo "$AI_SYSADMIN_VENV/bin/$1"
  else
    command -v "$1" || { echo "lint.sh: $1 not found (run scripts/provision.sh, or use nix develop)" >&2; exit 2; }
  fi
}

cd "$REPO"
if [[ $# -gt 0 ]]; then
  case "$1" in
    ruff|mypy) t="$(tool "$1")"; shift; exec "$t" "$@" ;;
    *) echo "lint.sh: unknown tool '$1' (ruff or mypy)" >&2; exit 2 ;;
  esac
fi

ruff="$(tool ruff)"
mypy="$(tool mypy)"
failed=()
"$ruff" check . || failed+=("ruff check")
"$ruff" format --check . || failed+=("ruff format")
# Files and strictness come from [tool.mypy]; the cache keeps warm runs to seconds.
"$mypy" --cache-dir "$CACHE/mypy-cache" || failed+=("mypy")
if ((${#failed[@]})); then
  printf -v which '%s and ' "${failed[@]}"
  echo "lint.sh: findings from ${which% and } (see above); fix them before the tests run" \
    "('scripts/lint.sh ruff check --fix .' and 'scripts/lint.sh ruff format .' fix most)" >&2
  exit 1
fi
echo "lint.sh: ruff and mypy clean" >&2
