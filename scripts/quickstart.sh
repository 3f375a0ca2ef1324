#!/usr/bin/env bash
# dockguard quick start: installs what the suite needs (as root, Debian 12), then
#   quickstart.sh sandbox [--engine E]          a private sandbox dockerd guarded by dockguard
#   quickstart.sh test [PYTEST ARGS]            the whole suite on the host's dockerd (20.10),
#                                               then the real-Docker tests on engine 26
#   quickstart.sh test --engine E [PYTEST ARGS] the suite (or PYTEST ARGS) on engine E only
# E: 20.10 (the host's docker.io), 26 (Debian 13's docker.io, fetched by
# scripts/get-docker-engine.sh into /var/cache/dockguard/engines/26), or a path to a dockerd.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
APT_PKGS=(docker.io containerd runc busybox-static lxcfs iproute2 util-linux debian-archive-keyring
          python3-venv python3-dev gcc libseccomp2 fuse3
          docker-registry apache2-utils systemd)
# the tests that start real dockerds, run again on the second engine: every tests/ package but
# tests/authz (the plugin's pure core: unit tests only)
REAL_DOCKER_TESTS=()
for d in tests/*/; do
  case "$d" in tests/authz/|tests/__pycache__/) ;; *) REAL_DOCKER_TESTS+=("${d%/}") ;; esac
done

need_root() {
  if [ "$(id -u)" != 0 ]; then echo "quickstart: run as root (sudo $0 $*)" >&2; exit 1; fi
}

install_apt() {
  local missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "quickstart: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

pick_python() {
  # Resolve shims (pyenv) to the real interpreter, so the venv never goes through them.
  local py
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then
      py="$("$cand" -c 'import sys; print(sys.executable if sys.version_info >= (3, 11) else "")' 2>/dev/null || true)"
      if [ -n "$py" ]; then echo "$py"; return; fi
    fi
  done
  echo "quickstart: Python >= 3.11 not found" >&2; exit 1
}

install_venv() {
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import dockguard, authz, hookbin, healthd' 2>/dev/null \
     || [ setup.cfg -nt .venv/.installed ]; then
    local py; py="$(pick_python)"
    [ -x .venv/bin/python ] || "$py" -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    touch .venv/.installed
  fi
}

start_lxcfs() {
  # lxcfs-hook needs a running lxcfs; start one if none answers (no systemd on some hosts).
  # A mount whose daemon died is stale (ENOTCONN): unmount it first.
  if ! head -c1 /var/lib/lxcfs/proc/meminfo >/dev/null 2>&1; then
    umount -l /var/lib/lxcfs 2>/dev/null || true
    mkdir -p /var/lib/lxcfs
    (setsid lxcfs /var/lib/lxcfs >/var/log/lxcfs.log 2>&1 &)
    for _ in $(seq 100); do head -c1 /var/lib/lxcfs/proc/meminfo >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

engine_dockerd() {
  # the dockerd for engine $1 (fetching 26 when needed); empty for the host's
  case "$1" in
    20.10|host) echo "" ;;
    26) bash scripts/get-docker-engine.sh 26 ;;
    /*) [ -x "$1" ] || { echo "quickstart: $1 is not an executable dockerd" >&2; exit 2; }; echo "$1" ;;
    *) echo "quickstart: unknown engine '$1' (20.10, 26 or /path/to/dockerd)" >&2; exit 2 ;;
  esac
}

cmd="${1:-}"; shift || true
engine=""
if [ "${1:-}" = "--engine" ]; then
  [ $# -ge 2 ] || { echo "quickstart: --engine needs 20.10, 26 or a path" >&2; exit 2; }
  engine="$2"; shift 2
fi
case "$cmd" in
  sandbox)
    need_root "$cmd"; install_apt; install_venv; start_lxcfs
    if [ -n "$engine" ]; then export DOCKGUARD_DOCKERD="$(engine_dockerd "$engine")"; fi
    exec .venv/bin/dockguard sandbox up "$@" ;;
  test)
    need_root "$cmd"; install_apt; install_venv; start_lxcfs
    if [ -n "$engine" ]; then
      DOCKGUARD_DOCKERD="$(engine_dockerd "$engine")" exec .venv/bin/python -m pytest "$@"
    fi
    d26="$(engine_dockerd 26)"
    rc=0
    echo "== the whole suite on the host's dockerd ($(dockerd --version)) =="
    env -u DOCKGUARD_DOCKERD .venv/bin/python -m pytest "$@" || rc=$?
    echo "== the real-Docker tests on $("$d26" --version) =="
    DOCKGUARD_DOCKERD="$d26" .venv/bin/python -m pytest "$@" "${REAL_DOCKER_TESTS[@]}" || rc=$?
    exit $rc ;;
  *)
    echo "usage: $0 sandbox|test [--engine 20.10|26|/path/to/dockerd] [args]" >&2; exit 2 ;;
esac
