"""`dockguard install`: put the files Docker and systemd read in place, for a real host.

- plugins/dockguard.spec      -> <root>/etc/docker/plugins/      (dockerd finds the plugin)
- systemd/*.service           -> <root>/etc/systemd/system/      (ExecStart pointed at this
                                                                   installation's `dockguard`)
- hook programs + dockguard-runtime (through hookbin.install)
and print the daemon.json that ties them together. `--root` stages everything under another
directory (a package build, or a test) instead of /.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UNIT_EXEC = "/opt/dockguard/.venv/bin/dockguard"


def register(sub, name):
    p = sub.add_parser(name, help="install the plugin spec, systemd units, hook programs and runtime")
    p.add_argument("--root", default="/", help="stage under this directory instead of / (default /)")
    p.add_argument("--docker-root", default="/var/lib/docker", help="Docker Root Dir (docker info)")
    p.add_argument("--bin-dir", default="/usr/local/bin", help="where dockguard-runtime goes")
    p.add_argument("--hook-spec", default="/etc/docker/hookspec.json",
                   help="the daemon-wide hook-spec the runtime reads (need not exist yet)")
    p.add_argument("--no-hooks", action="store_true", help="skip the hook programs and the runtime")
    p.set_defaults(func=cmd_install)


def _under(root: Path, path: str) -> Path:
    return root / path.lstrip("/")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    print(f"installed {path}")


def dockguard_exe() -> str:
    """This installation's `dockguard` console script (never a pyenv shim)."""
    exe = Path(sys.prefix) / "bin" / "dockguard"
    if not exe.exists():
        raise SystemExit(f"dockguard install: {exe} not found; install the package into a virtualenv first")
    return str(exe)


def daemon_json(runtime: dict | None) -> dict:
    conf: dict = {"authorization-plugins": ["dockguard"]}
    if runtime:
        conf["runtimes"] = {"dockguard": runtime}
        conf["default-runtime"] = "dockguard"
    return conf


def cmd_install(args) -> int:
    if os.geteuid() != 0:
        print("dockguard install: run as root (the hook programs must be root-owned)", file=sys.stderr)
        return 1
    root = Path(args.root)
    for src in ("plugins/dockguard.spec", "systemd/dockguard-authz.service", "systemd/dockguard-healthd.service"):
        if not (REPO / src).exists():
            print(f"dockguard install: {REPO / src} missing (run from a dockguard checkout)", file=sys.stderr)
            return 1
    exe = dockguard_exe()
    _write(_under(root, "/etc/docker/plugins/dockguard.spec"), (REPO / "plugins/dockguard.spec").read_text())
    for unit in ("dockguard-authz.service", "dockguard-healthd.service"):
        text = (REPO / "systemd" / unit).read_text().replace(UNIT_EXEC, exe)
        _write(_under(root, f"/etc/systemd/system/{unit}"), text)
    runtime = None
    if not args.no_hooks:
        from hookbin import install as hooks
        docker_root = _under(root, args.docker_root)
        for path in hooks.install_hooks(str(docker_root)):
            print(f"installed {path}")
        front = hooks.install_runtime(str(_under(root, args.bin_dir)), docker_root=args.docker_root)
        print(f"installed {front}")
        runtime = hooks.runtime_config(os.path.join(args.bin_dir, os.path.basename(front)),
                                       args.docker_root, args.hook_spec)
    print("\nMerge into /etc/docker/daemon.json:")
    print(json.dumps(daemon_json(runtime), indent=2))
    print("\nThen: systemctl daemon-reload && systemctl enable --now dockguard-authz dockguard-healthd"
          " && systemctl restart docker")
    return 0
