#!/usr/bin/env bash
# Open WebUI as admins run it, end to end in a real browser (not part of the test suite).
#
#   scripts/e2e-openwebui.sh            # screenshots, logs and timings under .state/e2e-openwebui/
#
# Installs Open WebUI 0.12.4 into its own cached virtualenv (about 6 minutes the first
# time), Debian's chromium + chromium-driver and selenium; starts the local stack
# (rig.local --tiny: role servers on SmolLM2 as measured in docs/openwebui.md, embedding
# server, PostgreSQL, `ai-sysadmin run` and the
# keyless API on 40083) plus a keyed API on 40085 over the same parts; starts Open WebUI
# offline against the keyed API (OFFLINE_MODE, HF_HUB_OFFLINE=1, no Ollama, its RAG
# embeddings from our `embed` role); then drives headless Chromium through: the agent
# model, a role model, Stop, a meta server stopped with SIGSTOP mid-answer, and a wrong
# key.  Needs a provisioned cache (scripts/local.sh or scripts/test.sh ran once);
# provisions with local.sh only when there is none.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
OWUI_VERSION=0.12.4
OUT="${E2E_OUT:-$REPO/.state/e2e-openwebui}"
KEYED_PORT=40085
OWUI_PORT="${OWUI_PORT:-40086}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3.12
mkdir -p "$OUT"
START=$SECONDS
log() { printf 'e2e: [%4ds] %s\n' "$((SECONDS - START))" "$*" | tee -a "$OUT/timings.txt" >&2; }
: >"$OUT/timings.txt"

[[ -f "$CACHE/rig.env" ]] || bash "$REPO/scripts/local.sh" --check
set -a; . "$CACHE/rig.env"; set +a
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

# ---------------------------------------------------------------- browser and Open WebUI
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need=(); for p in chromium chromium-driver; do have_pkg "$p" || need+=("$p"); done
if ((${#need[@]})); then
  log "installing ${need[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
OWUI_VENV="$CACHE/open-webui-$OWUI_VERSION"
if [[ ! -f "$OWUI_VENV/.complete" ]]; then
  log "installing open-webui==$OWUI_VERSION and selenium into $OWUI_VENV"
  rm -rf "$OWUI_VENV"
  "$PYTHON" -m venv "$OWUI_VENV"
  # (pip warns once per package about this machine's extra file:// indexes; keep real errors)
  "$OWUI_VENV/bin/pip" install -q "open-webui==$OWUI_VERSION" selenium \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  touch "$OWUI_VENV/.complete"
  log "installed"
fi

# ---------------------------------------------------------------- processes (ours, stopped by pid)
pids=()
owui_pid=""
cleanup() {
  if [[ -n ${meta_pid:-} ]]; then kill -CONT "$meta_pid" 2>/dev/null || true; fi  # never leave it stopped
  if [[ -n $owui_pid ]]; then kill -TERM "$owui_pid" 2>/dev/null || true; wait "$owui_pid" 2>/dev/null || true; fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
wait_http() {  # url seconds what
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || { log "$3 not up after $2 s"; exit 1; }
    sleep 1
  done
}

log "starting the local stack (role servers, PostgreSQL, ai-sysadmin run, API on 40083)"
"$AI_SYSADMIN_VENV/bin/python" -m rig.local --tiny --state "$OUT/state" >"$OUT/local.log" 2>&1 &
pids+=($!)
wait_http http://127.0.0.1:40083/health/ready 900 "local stack"
log "local stack ready"

KEY="k-$(openssl rand -hex 16)"
umask 077
printf 'open-webui:%s\n' "$KEY" >"$OUT/api.keys"
"$AI_SYSADMIN_VENV/bin/python" - "$OUT" "$KEYED_PORT" <<'PY'
import json, sys
out, port = sys.argv[1], int(sys.argv[2])
cfg = json.load(open(f"{out}/state/config.json"))
cfg["api"] = {"port": port, "api_key_file": f"{out}/api.keys"}
cfg["state_dir"] = f"{out}/state/keyed-api"
json.dump(cfg, open(f"{out}/keyed.json", "w"), indent=2)
PY
"$AI_SYSADMIN_VENV/bin/python" -m ai_sysadmin --config "$OUT/keyed.json" api >"$OUT/api-keyed.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$KEYED_PORT/health" 60 "keyed API"

start_owui() {  # key
  log "starting Open WebUI $OWUI_VERSION on :$OWUI_PORT"
  env DATA_DIR="$OUT/owui-data" WEBUI_AUTH=False ENABLE_PERSISTENT_CONFIG=False \
    OFFLINE_MODE=True HF_HUB_OFFLINE=1 ENABLE_OLLAMA_API=False \
    OPENAI_API_BASE_URLS="http://127.0.0.1:$KEYED_PORT/v1" OPENAI_API_KEYS="$1" \
    RAG_EMBEDDING_ENGINE=openai RAG_EMBEDDING_MODEL=embed \
    RAG_OPENAI_API_BASE_URL="http://127.0.0.1:$KEYED_PORT/v1" RAG_OPENAI_API_KEY="$1" \
    "$OWUI_VENV/bin/open-webui" serve --host 127.0.0.1 --port "$OWUI_PORT" >>"$OUT/open-webui.log" 2>&1 &
  owui_pid=$!
  wait_http "http://127.0.0.1:$OWUI_PORT/health" 600 "Open WebUI"
  log "Open WebUI up"
}
stop_owui() { kill -TERM "$owui_pid"; wait "$owui_pid" 2>/dev/null || true; owui_pid=""; }

meta_pid="$(ss -ltnpH 'sport = :40082' | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)"
[[ -n $meta_pid ]] || { log "no meta llama-server on :40082"; exit 1; }

start_owui "$KEY"
log "driving the browser: agent, role model, Stop, stopped meta server"
"$OWUI_VENV/bin/python" "$REPO/rig/openwebui_e2e.py" --url "http://127.0.0.1:$OWUI_PORT" --out "$OUT" \
  --api-log "$OUT/api-keyed.log" --meta-pid "$meta_pid" --phase main 2>&1 | tee -a "$OUT/timings.txt" \
  || log "some scenarios failed (see e2e-main.json)"
stop_owui
start_owui "k-wrong-$(openssl rand -hex 8)"
log "driving the browser: wrong key"
"$OWUI_VENV/bin/python" "$REPO/rig/openwebui_e2e.py" --url "http://127.0.0.1:$OWUI_PORT" --out "$OUT" \
  --api-log "$OUT/api-keyed.log" --phase wrong-key 2>&1 | tee -a "$OUT/timings.txt" \
  || log "the wrong-key scenario failed (see e2e-wrong-key.json)"
log "done: screenshots and logs in $OUT"
