"""Install the runtime wrapper and the hook programs, with shebangs that skip the slow paths.

Docker runs these on every container operation, with an empty environment for hooks, so
nothing may go through a `python3` shim or PATH lookups: each installed file names the real
interpreter (`-I -S`: no site, no user paths, ~20 ms) and the directory holding `hookbin`.
The wrapper itself is a /bin/sh front that execs runc directly for every command but
`create`; a `create` starts Python (-I -S, stdlib and dockguard's rule modules only), which
judges the OCI config (hookbin/judge.py) and merges hook-specs before it execs runc.
"""
from __future__ import annotations

import os
import shlex
import stat
import sys

from dockguard import util
from hookbin import spec as hookspec

PKG_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# program name -> module with main(argv)
HOOK_PROGRAMS = {
    "network-hook": "hookbin.hooks.network_hook",
    "lxcfs-hook": "hookbin.hooks.lxcfs_hook",
    "docker-hooks": "hookbin.hooks.docker_hooks",
}

RUNTIME_NAME = "dockguard-runtime"

FRONT_TEMPLATE = r"""#!/bin/sh
# dockguard-runtime: OCI runtime wrapper around runc, installed by `dockguard hookspec install`.
# Hot path in sh: every command but create (run, restore) execs runc directly. Every create
# goes to hookbin.runtime (Python): it judges the OCI config with dockguard's policy
# (refusing, or pinning bind sources), merges any hook-spec's hooks, then execs runc.
RUNC=@RUNC@
PY=@PY@
PKG=@PKG@
ROOT=@ROOT@

scan() {
  lead=0 cmd= odd=
  while [ $# -gt 0 ]; do
    case "$1" in
      --hook-spec|--docker-root|--policy)
        [ $# -ge 2 ] || { odd=1; return 0; }
        shift 2; lead=$((lead + 2)) ;;
      --hook-spec=*|--docker-root=*|--policy=*) shift; lead=$((lead + 1)) ;;
      *) break ;;
    esac
  done
  while [ $# -gt 0 ]; do
    case "$1" in
      --log|--log-format|--root|--criu|--rootless|-log|-log-format|-root|-criu|-rootless)
        [ $# -ge 2 ] || return 0; shift 2 ;;
      --hook-spec*|--docker-root*|--policy*|--runc*|--) odd=1; return 0 ;;
      -*) shift ;;
      *) cmd=$1; return 0 ;;
    esac
  done
}

scan "$@"
case "$cmd" in create|run|restore) odd=1 ;; esac
if [ -z "$odd" ]; then shift $lead; exec "$RUNC" "$@"; fi
exec "$PY" -IS -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); from hookbin.runtime import main; sys.exit(main())' "$PKG" --runc "$RUNC" --docker-root "$ROOT" "$@"
"""

HOOK_TEMPLATE = """#!{py} -IS
# {name}: a dockguard hook program, installed by `dockguard hookspec install`.
import sys
sys.path.insert(0, {pkg!r})
from {module} import main
sys.exit(main(sys.argv[1:], {policy!r}))
"""


class InstallError(util.DockguardError):
    pass


def real_python(python: str | None = None) -> str:
    """The interpreter binary itself, never a shim or a venv symlink chain."""
    return os.path.realpath(python or sys.executable)


def which_abs(name: str, candidates: tuple[str, ...] = ()) -> str:
    found = util.find_executable(name, candidates)
    if not found:
        raise InstallError(f"{name} not found")
    return found if found in candidates else os.path.realpath(found)


def render_front(runc: str, python: str, pkg_root: str, grep: str | None = None,
                 docker_root: str = hookspec.DEFAULT_DOCKER_ROOT) -> str:
    """The front script. `grep` is no longer used (every `create` is judged in Python); the
    parameter stays for callers that pass it."""
    text = FRONT_TEMPLATE
    for key, value in (("@RUNC@", runc), ("@PY@", python), ("@PKG@", pkg_root),
                       ("@ROOT@", docker_root)):
        text = text.replace(key, shlex.quote(value))
    return text


def render_hook(name: str, module: str, python: str, pkg_root: str, policy: str | None = None) -> str:
    """`policy`: the policy file the hook enforces ([hookspec]); None: /etc/dockguard/policy.toml
    when present, else the built-in defaults. Baked in, never taken from the hook's env or args."""
    if len(python) + 6 > 127:
        raise InstallError(f"interpreter path too long for a shebang: {python}")
    return HOOK_TEMPLATE.format(py=python, name=name, pkg=pkg_root, module=module, policy=policy)


def write_executable(path: str, text: str) -> None:
    """Atomically, root-owned, 0755: what the hook checks in spec.py demand."""
    util.atomic_write(path, text, 0o755, root_owned=True)


def install_hooks(docker_root: str, python: str | None = None, pkg_root: str = PKG_ROOT,
                  policy: str | None = None) -> list[str]:
    """Write the three hook programs into `<docker_root>/hooks` (created 0755 if missing)."""
    py = real_python(python)
    target = hookspec.hooks_dir(docker_root)
    os.makedirs(target, mode=0o755, exist_ok=True)
    st = os.stat(target)
    if stat.S_IMODE(st.st_mode) & (stat.S_IWGRP | stat.S_IWOTH):
        raise InstallError(f"{target} is writable by group or others; fix its mode first")
    written = []
    for name, module in HOOK_PROGRAMS.items():
        path = os.path.join(target, name)
        write_executable(path, render_hook(name, module, py, pkg_root, policy))
        written.append(path)
    return written


def install_runtime(bin_dir: str, runc: str | None = None, python: str | None = None,
                    pkg_root: str = PKG_ROOT, docker_root: str = hookspec.DEFAULT_DOCKER_ROOT) -> str:
    """Write the `dockguard-runtime` front script into `bin_dir`.

    `docker_root` becomes the default for --docker-root, so with the default root and no
    daemon-wide spec the runtime needs no runtimeArgs (dockerd then skips its own sh layer).
    """
    runc = runc or which_abs("runc", util.RUNC_CANDIDATES)
    if not os.access(runc, os.X_OK):
        raise InstallError(f"runc {runc!r} is not executable")
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    path = os.path.join(bin_dir, RUNTIME_NAME)
    write_executable(path, render_front(runc, real_python(python), pkg_root, docker_root=docker_root))
    return path


def runtime_config(runtime_path: str, docker_root: str, hook_spec: str | None = None,
                   policy: str | None = None) -> dict:
    """The daemon.json `runtimes` entry for the wrapper (`policy`: dockguard's policy file, for
    its rules and its [hookspec]; none: /etc/dockguard/policy.toml if present, else built-in)."""
    args = ["--hook-spec", hook_spec] if hook_spec else []
    args += ["--policy", policy] if policy else []
    return {"path": runtime_path, "runtimeArgs": args + ["--docker-root", docker_root]}
