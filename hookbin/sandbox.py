"""hookbin's part of the README sandbox: dockguard-runtime as the default runtime with a
sample daemon-wide spec (the docker-hooks recorder), and a walkthrough that shows a hook at
work and an invalid spec refused. The umbrella sandbox calls `configure` before starting
its dockerd and `walkthrough` once it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

from hookbin import install
from hookbin import spec as hookspec


def recorder_spec(hooks: Path, log: Path) -> dict:
    prog = str(hooks / "docker-hooks")
    return {phase: [{"path": prog, "args": ["docker-hooks", "--state", phase, "--log", str(log)],
                     "env": [], "timeout": 5}]
            for phase in hookspec.PHASES}


def configure(base: Path, data_root: Path) -> dict:
    """Install hooks into data_root/hooks and the wrapper into base/bin; write the sample
    daemon-wide spec (base/hookspec.json); return PrivateDaemon kwargs."""
    base, data_root = Path(base), Path(data_root)
    data_root.mkdir(parents=True, exist_ok=True)
    install.install_hooks(str(data_root))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(data_root))
    spec_path = base / "hookspec.json"
    spec_path.write_text(json.dumps(recorder_spec(data_root / "hooks", base / "docker-hooks.log"), indent=2) + "\n")
    problems = hookspec.check_label(str(spec_path), str(data_root))
    if problems:
        raise RuntimeError("sample hook-spec is invalid: " + "; ".join(problems))
    return {"runtimes": {"dockguard": install.runtime_config(runtime, str(data_root), str(spec_path))},
            "default_runtime": "dockguard"}


def walkthrough(daemon, step) -> None:
    """Show the recorder hook at work, a container's own spec, and a bad spec refused."""
    base = Path(daemon.base)
    hooks = Path(daemon.data_root) / "hooks"
    log = base / "docker-hooks.log"
    step("hooks: every container runs through dockguard-runtime; the daemon-wide spec records "
         "prestart/poststart/poststop", ["run", "--rm", "--name", "hooked", "busybox", "echo", "hello from a hooked container"], True)
    step("hooks: the recorder's log, mounted read-only: the container above's prestart, poststart and "
         "poststop, then this one's own prestart and poststart (it is running)",
         ["run", "--rm", "-v", f"{log}:/log:ro", "busybox", "tail", "-n", "5", "/log"], True)
    own = base / "hookspec-own.json"
    own.write_text(json.dumps({"poststart": [{"path": str(hooks / "docker-hooks"),
                                              "args": ["docker-hooks", "--state", "poststart", "--log", str(base / "own.log")],
                                              "env": [], "timeout": 2}]}, indent=2) + "\n")
    step("hooks: a container adds its own spec with a label (merged after the daemon-wide one)",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={own}", "busybox", "true"], True)
    bad = base / "hookspec-bad.json"
    bad.write_text(json.dumps({"prestart": [{"path": str(hooks / "docker-hooks"),
                                             "args": ["docker-hooks", "--state", "prestart"],
                                             "env": [], "timeout": 0}]}, indent=2) + "\n")
    step("hooks: an invalid spec (timeout 0, the guide allows 1-120) is refused at create, nothing left behind",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={bad}", "busybox", "true"], False)
    outside = base / "hookspec-outside.json"
    outside.write_text(json.dumps({"prestart": [{"path": "/bin/true", "args": ["true"], "env": []}]}, indent=2) + "\n")
    step("hooks: a hook outside <Docker Root Dir>/hooks is refused",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={outside}", "busybox", "true"], False)
