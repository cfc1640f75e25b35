#!/usr/bin/env bash
# Provision what the NixOS-side checks (tests/nix/) need, idempotently.
#
#   scripts/provision-nix.sh
#
# * Debian packages: nix-bin (nix-instantiate / nix flake, used with the project's
#   nixpkgs stand-in under nix/stand-in/), debootstrap, systemd-container
#   (systemd-nspawn), iproute2 (ss).
# * A Debian bookworm root for `systemd-nspawn --boot`, built once with debootstrap and
#   cached under "$AI_SYSADMIN_CACHE/nspawn/", keyed by NSPAWN_ROOT_VERSION below (bump
#   it when the package list changes).  A warm run only checks that the root is there.
#
# Results are written to "$AI_SYSADMIN_CACHE/nix.env" (KEY=VALUE lines), read by
# rig/nspawn.py.  scripts/provision.sh calls this script; it also runs on its own.
set -euo pipefail

CACHE="${AI_SYSADMIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-sysadmin}"
mkdir -p "$CACHE"

# Bump when the package list or the root's set-up changes: the old root is removed.
NSPAWN_ROOT_VERSION=bookworm-6
# postgresql-15, sudo and iptables: the NixOS VM test scripts (nix/tests/*.nix) run in
# this root through rig/nixos_driver.py, and use `sudo -u postgres psql` and the
# firewall's `iptables -S nixos-fw`.  libnss-systemd resolves DynamicUser= names (as
# NixOS does), which PostgreSQL's peer authentication and dbus-daemon need;
# libnss-myhostname resolves the host name.  systemd-journal-remote (systemd-journal-remote
# and systemd-journal-upload, and their units): the fleet's journal transport between
# containers (rig/fleet.py); its units are not enabled by the package.
NSPAWN_PACKAGES=systemd,systemd-sysv,dbus,python3,libgomp1,libstdc++6,iproute2,procps,curl,ca-certificates,postgresql-15,sudo,iptables,libnss-systemd,libnss-myhostname,systemd-journal-remote
DEBIAN_MIRROR="${AI_SYSADMIN_DEBIAN_MIRROR:-}"

log() { printf 'provision-nix: %s\n' "$*" >&2; }

exec 8>"$CACHE/.provision-nix.lock"
flock 8

SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo

# ---------------------------------------------------------------- Debian packages
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need_pkgs=()
for p in nix-bin debootstrap systemd-container iproute2; do
  have_pkg "$p" || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
NIX_BIN="$(dirname "$(command -v nix-instantiate)")"
[[ -x $NIX_BIN/nix ]] || { log "nix not found after installing nix-bin"; exit 1; }
# Single-user store owned by root (no daemon); evaluation writes only .drv files and
# builtins.toFile results there, and nothing is built.
if [[ ! -d /nix/store ]]; then
  $SUDO mkdir -p /nix/store /nix/var/nix
fi

# ---------------------------------------------------------------- nspawn root
ROOT_BASE="$CACHE/nspawn"
ROOT="$ROOT_BASE/$NSPAWN_ROOT_VERSION"
if [[ ! -f "$ROOT/.complete" ]]; then
  log "building the Debian bookworm root for systemd-nspawn ($ROOT, about 2-4 minutes)"
  mkdir -p "$ROOT_BASE"
  # Old versions of the root are dropped so the cache does not grow, unless a running
  # systemd-nspawn still boots from one (another checkout's tests).
  for old in "$ROOT_BASE"/*/; do
    old="${old%/}"
    [[ $(basename "$old") == "$NSPAWN_ROOT_VERSION" || $old == "$ROOT.tmp" ]] && continue
    if grep -qsF -- "--directory=$old" /proc/[0-9]*/cmdline; then
      log "keeping $old: a running systemd-nspawn uses it"
    else
      rm -rf "$old"
    fi
  done
  rm -rf "$ROOT" "$ROOT.tmp"
  if [[ -z $DEBIAN_MIRROR ]]; then
    # The mirror apt is already configured with (deb822 or one-line sources).
    DEBIAN_MIRROR="$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)"
    [[ -n $DEBIAN_MIRROR ]] || DEBIAN_MIRROR="$(grep -hsE '^deb ' /etc/apt/sources.list | awk '{print $2}' | head -1)"
    [[ -n $DEBIAN_MIRROR ]] || { log "no Debian mirror in apt sources; set AI_SYSADMIN_DEBIAN_MIRROR"; exit 1; }
  fi
  $SUDO debootstrap --variant=minbase --include="$NSPAWN_PACKAGES" bookworm "$ROOT.tmp" "$DEBIAN_MIRROR" \
    >"$ROOT_BASE/debootstrap.log" 2>&1 || { tail -30 "$ROOT_BASE/debootstrap.log" >&2; exit 1; }
  # Boot quietly and quickly: no getty on the console, no network management, no
  # timers that would compete for the two cores.
  $SUDO rm -f "$ROOT.tmp"/etc/systemd/system/getty.target.wants/* \
    "$ROOT.tmp"/etc/systemd/system/timers.target.wants/*
  $SUDO ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/console-getty.service"
  $SUDO ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/systemd-networkd.service"
  $SUDO ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/systemd-resolved.service"
  # Debian's own PostgreSQL cluster stays out of the way: the rendered NixOS
  # postgresql.service (initdb, ensureUsers, ...) runs the postgres binaries instead.
  $SUDO ln -sf /dev/null "$ROOT.tmp/etc/systemd/system/postgresql@.service"
  $SUDO rm -rf "$ROOT.tmp/etc/postgresql/15" "$ROOT.tmp/var/lib/postgresql/15"
  echo nspawn-check | $SUDO tee "$ROOT.tmp/etc/hostname" >/dev/null
  $SUDO rm -rf "$ROOT.tmp"/var/cache/apt/archives/*.deb "$ROOT.tmp"/var/lib/apt/lists/*
  $SUDO touch "$ROOT.tmp/.complete"
  $SUDO mv "$ROOT.tmp" "$ROOT"
fi

# ---------------------------------------------------------------- the real nixpkgs lib
# tests/nix/test_stand_in.py holds the stand-in's lib against the real one.  Its source:
# $AI_SYSADMIN_NIXPKGS_LIB_SRC (a git directory or a checkout of nix-community/nixpkgs.lib
# or nixpkgs), else the mirror this project's build machines keep.  Copied out of the
# repository's tree: nothing fetched is part of the project.
LIB_SRC="${AI_SYSADMIN_NIXPKGS_LIB_SRC:-/work/.mirror/nix-community+nixpkgs.lib/repo}"
NIXPKGS_LIB=""
if [[ -d $LIB_SRC/lib ]]; then
  NIXPKGS_LIB="$LIB_SRC/lib"
elif git --git-dir="$LIB_SRC" rev-parse HEAD >/dev/null 2>&1; then
  rev="$(git --git-dir="$LIB_SRC" rev-parse HEAD)"
  if [[ ! -f $CACHE/nixpkgs-lib/$rev/lib/default.nix ]]; then
    rm -rf "$CACHE/nixpkgs-lib" && mkdir -p "$CACHE/nixpkgs-lib/$rev"
    git --git-dir="$LIB_SRC" archive HEAD lib | tar -x -C "$CACHE/nixpkgs-lib/$rev"
  fi
  NIXPKGS_LIB="$CACHE/nixpkgs-lib/$rev/lib"
else
  # The mirror is a build machine's, not the project's: it may be gone on a later run.
  # The copy taken from it earlier stays in the cache and is still the real lib.
  cached="$(ls -d "$CACHE"/nixpkgs-lib/*/lib 2>/dev/null | head -n 1 || true)"
  if [[ -n $cached && -f $cached/default.nix ]]; then
    NIXPKGS_LIB="$cached"
    log "nixpkgs lib source $LIB_SRC is gone; using the cached copy $cached"
  else
    log "no real nixpkgs lib (set AI_SYSADMIN_NIXPKGS_LIB_SRC): the stand-in's lib is not compared with it"
  fi
fi

cat >"$CACHE/nix.env.tmp" <<ENV
AI_SYSADMIN_NIX_BIN=$NIX_BIN
AI_SYSADMIN_NSPAWN_ROOT=$ROOT
AI_SYSADMIN_NSPAWN_ROOT_VERSION=$NSPAWN_ROOT_VERSION
AI_SYSADMIN_NIXPKGS_LIB=$NIXPKGS_LIB
ENV
mv "$CACHE/nix.env.tmp" "$CACHE/nix.env"
log "ready ($CACHE/nix.env)"
