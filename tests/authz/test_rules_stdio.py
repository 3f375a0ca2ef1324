"""attach-stdin-only, shell-without-tty, systemd-non-system: the command the container runs."""
from __future__ import annotations

import pytest

from authz.rules.stdio import effective_argv

from .helpers import FakeContext, allowed, create, create_problems, denied_by, request_for

IMAGES = {
    "busybox": {"Cmd": ["sh"]},
    "debian": {"Cmd": ["bash"]},
    "app": {"Entrypoint": ["/app/run"], "Cmd": ["--serve"]},
    "shentry": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"]},
    "sysd": {"Cmd": ["/sbin/init"]},
    "bare": {},
}


def body(**kw):
    return {"Image": kw.pop("Image", "busybox"), **kw}


def c(b, **kw):
    return create(b, image_configs=IMAGES, **kw)


# ---- attach ----

def test_attach_stdin_only():
    msg = denied_by(c(body(Cmd=["true"], AttachStdin=True)), "attach-stdin-only")
    assert "-a stdin without -a stdout or -a stderr" in msg
    allowed(c(body(Cmd=["true"], AttachStdin=True, AttachStdout=True)))
    allowed(c(body(Cmd=["true"], AttachStdin=True, AttachStderr=True)))
    allowed(c(body(Cmd=["true"], AttachStdout=True)))
    denied_by(c('{"Image":"busybox","Cmd":["true"],"attachstdin":true,"AttachStdout":true,"attachSTDOUT":false}'),
              "attach-stdin-only")


# ---- shells ----

@pytest.mark.parametrize("cmd", [["sh"], ["/bin/sh"], ["/bin/bash"], ["bash", "-l"], ["busybox", "sh"],
                                 ["/bin/busybox", "ash"], ["zsh", "-i"], ["sh", "-s"], ["dash", "--login"], "sh"])
def test_shell_without_tty(cmd):
    msg = denied_by(c(body(Cmd=cmd)), "shell-without-tty")
    argv = [cmd] if isinstance(cmd, str) else cmd
    assert f"shell {' '.join(argv)!r} without -ti" in msg


@pytest.mark.parametrize("cmd", [["sh", "-c", "x"], ["sh", "-xc", "x"], ["/bin/bash", "-ec", "x"],
                                 ["sh", "script.sh"], ["bash", "-e", "/run.sh"], ["busybox", "ls"],
                                 ["busybox"], ["echo", "sh"], ["true"], ["shx"]])
def test_shell_with_a_command_or_script_is_fine(cmd):
    allowed(c(body(Cmd=cmd)))


@pytest.mark.parametrize("flags,ok", [({"Tty": True, "OpenStdin": True}, True), ({"Tty": True}, False),
                                      ({"OpenStdin": True}, False), ({}, False)])
def test_ti_is_needed(flags, ok):
    out = c(body(Cmd=["sh"], AttachStdin=True, AttachStdout=True, **flags))
    if ok:
        allowed(out)
    else:
        denied_by(out, "shell-without-tty")


def test_image_cmd_is_used():
    out = c(body(Image="busybox"))
    assert "shell 'sh' without -ti" in denied_by(out, "shell-without-tty")
    assert ("image_config", "busybox") in out.ctx.calls
    denied_by(c(body(Image="debian")), "shell-without-tty")
    allowed(c(body(Image="app")))
    allowed(c(body(Image="shentry")))
    allowed(c(body(Image="bare")))
    allowed(c(body(Image="unknown")))


def test_entrypoint_and_cmd_combine_as_in_dockerd():
    ctx = FakeContext(image_configs=IMAGES)
    _r, spec = request_for("POST", "/containers/create", body(Image="shentry"))
    assert effective_argv(spec, ctx) == ["/bin/sh", "-c", "echo hi"]
    # a request Entrypoint resets the image Cmd
    _r, spec = request_for("POST", "/containers/create", body(Image="shentry", Entrypoint=["sh"]))
    assert effective_argv(spec, ctx) == ["sh"]
    # a request Cmd keeps the image Entrypoint
    _r, spec = request_for("POST", "/containers/create", body(Image="shentry", Cmd=["ls"]))
    assert effective_argv(spec, ctx) == ["/bin/sh", "-c", "ls"]
    _r, spec = request_for("POST", "/containers/create", body(Image="app", Entrypoint="bash"))
    assert effective_argv(spec, ctx) == ["bash"]
    denied_by(c(body(Image="shentry", Entrypoint=["sh"])), "shell-without-tty")


def test_explicit_entrypoint_needs_no_image_lookup():
    # (the create as a whole still asks for the image once, for its labels: test_engine.py)
    assert create_problems("shell-without-tty", body(Entrypoint=["echo"], Cmd=["ok"]), fail={"image_config"}) is None


# ---- systemd ----

@pytest.mark.parametrize("b", [body(Cmd=["/sbin/init"]), body(Cmd=["init"]), body(Entrypoint=["/lib/systemd/systemd"]),
                               body(Image="sysd"), body(Cmd="/usr/sbin/init")])
def test_systemd_in_non_system_container(b):
    assert "(systemd) in a non-system container" in denied_by(c(b), "systemd-non-system")


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_system_container_label(value):
    allowed(c(body(Cmd=["/sbin/init"], Labels={"dockguard.system-container": value})))


def test_systemd_twins():
    denied_by(c(body(Cmd=["/sbin/init"], Labels={"dockguard.system-container": "yes"})), "systemd-non-system")
    allowed(c(body(Cmd=["/usr/bin/initdb"])))
    allowed(c(body(Cmd=["tini", "--", "/app"])))
    assert create_problems("systemd-non-system", body(Cmd=["echo", "/sbin/init"]), image_configs=IMAGES) is None


# dockerd's merge (daemon/commit.go) tests len() == 0, so an empty list is "not given";
# mergeAndVerifyConfig then resets an Entrypoint of [""] (what `--entrypoint ""` sends).
@pytest.mark.parametrize("b,argv", [
    (body(Image="busybox", Cmd=[]), ["sh"]),
    (body(Image="busybox", Entrypoint=[]), ["sh"]),
    (body(Image="busybox", Entrypoint=[], Cmd=[]), ["sh"]),
    (body(Image="app", Entrypoint=[]), ["--serve"]),  # [] is not nil: the image Entrypoint is not taken
    (body(Image="app", Cmd=[]), ["/app/run", "--serve"]),
    (body(Image="busybox", Entrypoint=[""], Cmd=["bash"]), ["bash"]),
    (body(Image="app", Entrypoint=[""]), []),
    (body(Image="app", Entrypoint="", Cmd=["sh"]), ["sh"]),
])
def test_empty_lists_merge_as_in_dockerd(b, argv):
    _r, spec = request_for("POST", "/containers/create", b)
    assert effective_argv(spec, FakeContext(image_configs=IMAGES)) == argv


@pytest.mark.parametrize("b", [body(Image="busybox", Cmd=[]), body(Image="busybox", Entrypoint=[]),
                               body(Image="busybox", Entrypoint=[""], Cmd=["sh"])])
def test_empty_cmd_or_entrypoint_evasions(b):
    denied_by(c(b), "shell-without-tty")


def test_empty_cmd_systemd_evasion():
    denied_by(c(body(Image="sysd", Cmd=[])), "systemd-non-system")
    denied_by(c(body(Image="bare", Entrypoint=[""], Cmd=["/sbin/init"])), "systemd-non-system")
