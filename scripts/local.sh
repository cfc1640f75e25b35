#!/usr/bin/env bash
# Run ai-sysadmin locally with its embedded defaults (README's first command).
#
#   scripts/local.sh [--state DIR] [--check]
#
# Provisions what is missing (scripts/provision.sh, without the Nix checks' parts), then
# starts the three role servers on 127.0.0.1:40080-40082 and an embedding server on 40084
# with the tiny SmolLM2 model, a private PostgreSQL under .state/, prints
# `ai-sysadmin doctor`, and runs the service (`ai-sysadmin run`) and the API without a
# key on 127.0.0.1:40083 (loopback only). Ctrl-C stops all.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AI_SYSADMIN_SKIP_NIX=1 bash "$REPO/scripts/provision.sh"
CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
set -a; . "$CACHE/rig.env"; set +a
cd "$REPO"
# This checkout's code, whichever checkout the shared venv's editable install points at.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$AI_SYSADMIN_VENV/bin/python" -m rig.local "$@"
