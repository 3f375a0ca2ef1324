"""hookbin's part of the README sandbox: dockguard-runtime as the default runtime with a
sample daemon-wide spec (the docker-hooks recorder), and a walkthrough that shows a hook at
work and an invalid spec refused. The umbrella sandbox calls `configure` before starting
its dockerd and `walkthrough` once it runs.
"""
from __future__ import annotations

import json
from pathlib import Path

from hookbin import install
from hookbin import policy as hookpolicy
from hookbin import spec as hookspec


def recorder_spec(hooks: Path, log: Path) -> dict:
    prog = str(hooks / "docker-hooks")
    return {phase: [{"path": prog, "args": ["docker-hooks", "--state", phase, "--log", str(log)],
                     "env": [], "timeout": 5}]
            for phase in hookspec.PHASES}


def policy_path(base: Path) -> Path:
    """The sandbox's policy: its [hookspec] grants base/hookspecs and logs into base/hooklogs;
    the plugin, the runtime and the hook programs all read it."""
    return Path(base) / "policy.toml"


def configure(base: Path, data_root: Path) -> dict:
    """Write the sandbox policy, install hooks into data_root/hooks and the wrapper into
    base/bin; write the sample daemon-wide spec (base/hookspec.json); return PrivateDaemon kwargs.

    Hook-specs are trusted only when their whole path is root's alone: the sandbox's base
    (/var/lib/dockguard-sandbox) is, a /tmp directory would not be."""
    base, data_root = Path(base), Path(data_root)
    data_root.mkdir(parents=True, exist_ok=True)
    for d in (base / "hookspecs", base / "hooklogs"):
        d.mkdir(mode=0o755, exist_ok=True)
    policy = policy_path(base)
    policy.write_text(f'[hookspec]\nspec_dirs = ["{base / "hookspecs"}"]\nlog_dir = "{base / "hooklogs"}"\n')
    install.install_hooks(str(data_root), policy=str(policy))
    runtime = install.install_runtime(str(base / "bin"), docker_root=str(data_root))
    spec_path = base / "hookspec.json"
    spec_path.write_text(json.dumps(recorder_spec(data_root / "hooks", base / "hooklogs" / "docker-hooks.log"),
                                    indent=2) + "\n")
    try:  # judged as the runtime judges a daemon-wide spec (granted: need not be in spec_dirs)
        hookspec.load_specs([str(spec_path)], str(data_root), hookpolicy.load(str(policy)), granted=str(spec_path))
        problems = []
    except hookspec.SpecError as exc:
        problems = exc.problems
    except hookpolicy.PolicyError as exc:
        problems = [str(exc)]
    if problems:
        raise RuntimeError("sample hook-spec is invalid: " + "; ".join(problems))
    entry = install.runtime_config(runtime, str(data_root), str(spec_path), policy=str(policy))
    return {"runtimes": {"dockguard": entry}, "default_runtime": "dockguard"}


def walkthrough(daemon, step) -> None:
    """Show the recorder hook at work, a container's own spec, and a bad spec refused."""
    base = Path(daemon.base)
    hooks = Path(daemon.data_root) / "hooks"
    log = base / "hooklogs" / "docker-hooks.log"
    step("hooks: every container runs through dockguard-runtime; the daemon-wide spec records "
         "prestart/poststart/poststop", ["run", "--rm", "--name", "hooked", "busybox", "echo", "hello from a hooked container"], True)
    print(f"\n    the recorder's log on the host ({log}): the container above's prestart, poststart, poststop")
    try:
        for line in log.read_text().splitlines()[-3:]:
            print(f"      {line[:400]}")
    except OSError as exc:
        print(f"      (cannot read it: {exc.strerror})")
    own = base / "hookspecs" / "own.json"
    own.write_text(json.dumps({"poststart": [{"path": str(hooks / "docker-hooks"),
                                              "args": ["docker-hooks", "--state", "poststart", "--log", str(base / "hooklogs" / "own.log")],
                                              "env": [], "timeout": 2}]}, indent=2) + "\n")
    step("hooks: a container adds its own spec with a label (merged after the daemon-wide one)",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={own}", "busybox", "true"], True)
    bad = base / "hookspecs" / "bad.json"
    bad.write_text(json.dumps({"prestart": [{"path": str(hooks / "docker-hooks"),
                                             "args": ["docker-hooks", "--state", "prestart"],
                                             "env": [], "timeout": 0}]}, indent=2) + "\n")
    step("hooks: an invalid spec (timeout 0, the guide allows 1-120) is refused at create, nothing left behind",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={bad}", "busybox", "true"], False)
    outside = base / "hookspecs" / "outside.json"
    outside.write_text(json.dumps({"prestart": [{"path": "/bin/true", "args": ["true"], "env": []}]}, indent=2) + "\n")
    step("hooks: a hook outside <Docker Root Dir>/hooks is refused",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={outside}", "busybox", "true"], False)
    loose = Path("/tmp") / "dockguard-sandbox-hookspec.json"
    loose.write_text(json.dumps({"prestart": [{"path": str(hooks / "docker-hooks"),
                                               "args": ["docker-hooks", "--state", "prestart"],
                                               "env": ["LD_PRELOAD=/tmp/evil.so"]}]}) + "\n")
    step("hooks: a spec the host did not grant (in /tmp, loading a library into the root-run hook) is refused",
         ["run", "--rm", "--label", f"{hookspec.LABEL}={loose}", "busybox", "true"], False)
