"""Install the runtime wrapper and the hook programs, with shebangs that skip the slow paths.

Docker runs these on every container operation, with an empty environment for hooks, so
nothing may go through a `python3` shim or PATH lookups: each installed file names the real
interpreter (`-I -S`: no site, no user paths, ~20 ms) and the directory holding `hookbin`.
The wrapper itself is a /bin/sh front that execs runc directly unless there is a hook-spec
to merge, so the common path never starts Python.
"""
from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys

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
# Hot path in sh: every command but `create` (and a `create` with no hook-spec anywhere)
# execs runc directly. Otherwise hookbin.runtime (Python) merges the hooks, then execs runc.
# A docker root without containers/ means a wrong --docker-root: Python then refuses loudly
# rather than silently dropping the container's hooks.
RUNC=@RUNC@
PY=@PY@
PKG=@PKG@
GREP=@GREP@
ROOT=@ROOT@

scan() {
  lead=0 spec= root=$ROOT cmd= bundle=. id= odd=
  while [ $# -gt 0 ]; do
    case "$1" in
      --hook-spec|--docker-root|--policy)
        [ $# -ge 2 ] || { odd=1; return 0; }
        if [ "$1" = --hook-spec ]; then spec=$2; elif [ "$1" = --docker-root ]; then root=$2; fi
        shift 2; lead=$((lead + 2)) ;;
      --policy=*) shift; lead=$((lead + 1)) ;;
      --hook-spec=*) spec=${1#*=}; shift; lead=$((lead + 1)) ;;
      --docker-root=*) root=${1#*=}; shift; lead=$((lead + 1)) ;;
      *) break ;;
    esac
  done
  while [ $# -gt 0 ]; do
    case "$1" in
      --log|--log-format|--root|--criu|--rootless|-log|-log-format|-root|-criu|-rootless)
        [ $# -ge 2 ] || return 0; shift 2 ;;
      --hook-spec*|--docker-root*|--policy*|--runc*|--) odd=1; return 0 ;;
      -*) shift ;;
      *) cmd=$1; shift; break ;;
    esac
  done
  [ "$cmd" = create ] || return 0
  while [ $# -gt 0 ]; do
    case "$1" in
      --bundle|-b) [ $# -ge 2 ] || { odd=1; return 0; }; bundle=$2; shift 2 ;;
      --bundle=*|-b=*) bundle=${1#*=}; shift ;;
      --console-socket|--pid-file|--preserve-fds) [ $# -ge 2 ] || return 0; shift 2 ;;
      -*) shift ;;
      *) id=$1; shift ;;
    esac
  done
}

scan "$@"
if [ -z "$odd" ]; then
  if [ "$cmd" != create ]; then shift $lead; exec "$RUNC" "$@"; fi
  if [ -z "$spec" ] && [ -n "$id" ] && [ -d "$root/containers" ] && \
     ! "$GREP" -qsF dockguard.hook-spec "$root/containers/$id/config.v2.json" "$bundle/config.json"; then
    shift $lead; exec "$RUNC" "$@"
  fi
fi
exec "$PY" -IS -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); from hookbin.runtime import main; sys.exit(main())' "$PKG" --runc "$RUNC" --docker-root "$ROOT" "$@"
"""

HOOK_TEMPLATE = """#!{py} -IS
# {name}: a dockguard hook program, installed by `dockguard hookspec install`.
import sys
sys.path.insert(0, {pkg!r})
from {module} import main
sys.exit(main(sys.argv[1:], {policy!r}))
"""


class InstallError(Exception):
    pass


def real_python(python: str | None = None) -> str:
    """The interpreter binary itself, never a shim or a venv symlink chain."""
    return os.path.realpath(python or sys.executable)


def which_abs(name: str, candidates: tuple[str, ...]) -> str:
    for cand in candidates:
        if os.access(cand, os.X_OK):
            return cand
    found = shutil.which(name)
    if not found:
        raise InstallError(f"{name} not found")
    return os.path.realpath(found)


def render_front(runc: str, python: str, pkg_root: str, grep: str,
                 docker_root: str = hookspec.DEFAULT_DOCKER_ROOT) -> str:
    text = FRONT_TEMPLATE
    for key, value in (("@RUNC@", runc), ("@PY@", python), ("@PKG@", pkg_root), ("@GREP@", grep),
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
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o700)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            if os.geteuid() == 0:
                os.fchown(f.fileno(), 0, 0)
            os.fchmod(f.fileno(), 0o755)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
    runc = runc or which_abs("runc", ("/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc"))
    grep = which_abs("grep", ("/usr/bin/grep", "/bin/grep"))
    if not os.access(runc, os.X_OK):
        raise InstallError(f"runc {runc!r} is not executable")
    os.makedirs(bin_dir, mode=0o755, exist_ok=True)
    path = os.path.join(bin_dir, RUNTIME_NAME)
    write_executable(path, render_front(runc, real_python(python), pkg_root, grep, docker_root))
    return path


def runtime_config(runtime_path: str, docker_root: str, hook_spec: str | None = None,
                   policy: str | None = None) -> dict:
    """The daemon.json `runtimes` entry for the wrapper (`policy`: its [hookspec] source)."""
    args = ["--hook-spec", hook_spec] if hook_spec else []
    args += ["--policy", policy] if policy else []
    return {"path": runtime_path, "runtimeArgs": args + ["--docker-root", docker_root]}
