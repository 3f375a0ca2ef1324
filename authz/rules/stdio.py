"""Standard I/O and the container's command (guide: 启动容器不能单独加-a stdin;
使用sh/bash等依赖标准输入输出的容器应该使用-ti参数; 容器基础镜像中systemd使用限制)."""
from __future__ import annotations

import posixpath

from . import rule

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish",
                    "hush", "busybox"})
SYSTEMD = frozenset({"systemd", "init"})
SYSTEM_LABEL = "dockguard.system-container"


def effective_argv(spec, ctx) -> list[str]:
    """The command the container will run: request Entrypoint/Cmd over the image's.

    As in dockerd (daemon/commit.go merge, then mergeAndVerifyConfig): a request Entrypoint
    resets the image's Cmd; an empty one ([] or null) with an empty Cmd takes the image's Cmd;
    a null one takes the image's Entrypoint; an Entrypoint of [""] is then dropped.
    """
    entry, cmd = spec.entrypoint, spec.cmd
    if not entry:
        img = ctx.image_config(spec.image) if spec.image else {}
        if not cmd:
            cmd = img.get("Cmd") or []
        if entry is None:
            entry = img.get("Entrypoint") or []
    if entry == [""]:
        entry = []
    return list(entry or []) + list(cmd or [])


def _shell_without_script(argv: list[str]) -> str | None:
    if not argv:
        return None
    exe = posixpath.basename(argv[0])
    rest = argv[1:]
    if exe == "busybox":
        if not rest or posixpath.basename(rest[0]) not in SHELLS - {"busybox"}:
            return None
        exe, rest = rest[0], rest[1:]
    if exe not in SHELLS:
        return None
    for a in rest:
        if a == "-c" or (a.startswith("-") and "c" in a[1:] and not a.startswith("--")):
            return None  # a command string
        if not a.startswith("-"):
            return None  # a script file
    return " ".join(argv)


@rule("attach-stdin-only", actions=("container.create",),
      reason="a container attached to stdin alone keeps the terminal hanging even after it exits",
      hint="add -a stdout or -a stderr together with -a stdin")
def attach_stdin_only(spec, facts):
    if spec.attach_stdin and not (spec.attach_stdout or spec.attach_stderr):
        return ["-a stdin without -a stdout or -a stderr"]


@rule("shell-without-tty", actions=("container.create",),
      reason="sh/bash without -ti exits at once, and a daemon killed at the wrong moment leaves "
             "it running with a pipe no one can take over",
      hint="run shells with -ti, or give them a script or -c 'command'")
def shell_without_tty(spec, facts):
    if spec.tty and spec.open_stdin:
        return None
    shell = _shell_without_script(effective_argv(spec, facts))
    if shell:
        return [f"shell {shell!r} without -ti"]


@rule("systemd-non-system", actions=("container.create",),
      reason="systemd from a base image is only for system containers; ordinary containers do "
             "not support it",
      hint=f"run the service itself as the command, or mark a real system container with "
           f"--label {SYSTEM_LABEL}=true")
def systemd_non_system(spec, facts):
    if spec.labels.get(SYSTEM_LABEL, "").lower() == "true":
        return None
    argv = effective_argv(spec, facts)
    if argv and (posixpath.basename(argv[0]) in SYSTEMD):
        return [f"command {argv[0]!r} (systemd) in a non-system container"]
