#!/usr/bin/env bash
# Run the whole test suite against real parts (README's test command; CI runs exactly this).
#
#   scripts/test.sh [pytest args...]
#
# Provisions what is missing first (scripts/provision.sh; warm runs take about a second),
# lints and type-checks (scripts/lint.sh: ruff and mypy; a finding fails the run), then
# runs pytest with AI_SYSADMIN_REQUIRE_REAL_PARTS=1 so that a real part that cannot be
# started fails the run instead of skipping tests.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$REPO/scripts/provision.sh"
CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
set -a; . "$CACHE/rig.env"; set +a
export AI_SYSADMIN_REQUIRE_REAL_PARTS=1
# This checkout's code, whichever checkout the shared venv's editable install points at.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
if ! bash "$REPO/scripts/lint.sh"; then
  echo "test.sh: lint or type errors (scripts/lint.sh above) -- not running the tests" >&2
  exit 1
fi
set +e
"$AI_SYSADMIN_VENV/bin/python" -m pytest -ra "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "test.sh: pytest collected no tests -- treating as failure" >&2
  exit 1
fi
exit $rc
