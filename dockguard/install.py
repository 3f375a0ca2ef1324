"""`dockguard install` / `dockguard uninstall`: the files Docker and systemd read, on a real host.

install writes (under --root, default /):
- /etc/docker/plugins/dockguard.spec                    dockerd finds the plugin's socket
- /etc/systemd/system/dockguard-authz.{socket,service}, dockguard-healthd.service, and the
  drop-in docker.service.d/dockguard.conf (docker after the plugin's socket)
- /etc/dockguard/{policy.toml,authz.env,healthd.env}    created once, never overwritten:
  the operator's settings, which the units read (so upgrades keep them)
- <docker-root>/hooks/* and <bin-dir>/dockguard-runtime (hook programs, runtime wrapper)
- /etc/docker/daemon.json, merged: its own keys only, a timestamped backup first, the
  operator's other keys kept, validated, written atomically
- /var/lib/dockguard/install.json: what it added, so uninstall removes exactly that.
Every file comes from package data (dockguard/data, hookbin's templates): a wheel installs.

--dry-run prints the changes as a unified diff and changes nothing; a second run changes
nothing. systemctl is best effort: where systemd is not PID 1 (an image build, a chroot)
the steps it could not do are reported, never fatal. Nothing prompts.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from dockguard import preflight, util

PLUGIN = "dockguard"
UNITS = ("dockguard-authz.socket", "dockguard-authz.service", "dockguard-healthd.service")
DROPIN = "/etc/systemd/system/docker.service.d/dockguard.conf"
SPEC = "/etc/docker/plugins/dockguard.spec"
DAEMON_JSON = "/etc/docker/daemon.json"
CONF_DIR = "/etc/dockguard"
POLICY = f"{CONF_DIR}/policy.toml"
STATE = "/var/lib/dockguard/install.json"
ENTITLEMENTS = {"network-host": False, "security-insecure": False}
# Runtimes dockerd knows without a daemon.json entry.
BUILTIN_RUNTIMES = {"runc", "io.containerd.runc.v2", "io.containerd.runtime.v1.linux"}


class InstallError(util.DockguardError):
    """A clear reason to stop before changing anything."""


# ---- plain data: what the files should be ---------------------------------------------

def data_text(name: str) -> str:
    return resources.files("dockguard").joinpath("data", name).read_text()


@dataclass
class Want:
    path: str              # absolute, as on the host (the root is added when applied)
    text: str | None       # None: the file must not exist
    mode: int = 0o644
    once: bool = False     # created if missing, never overwritten (operator's settings)


@dataclass
class Plan:
    files: list[Want] = field(default_factory=list)
    daemon: dict | None = None      # daemon.json as it should be (None: leave it)
    notes: list[str] = field(default_factory=list)
    state: dict | None = None       # install.json as it should be (None: remove it)


def policy_override(buildkit_enforced: bool, runtime: bool) -> str:
    """/etc/dockguard/policy.toml: only what differs from the built-in policy."""
    head = ("# dockguard policy: overrides of the built-in policy (`dockguard authz default-policy`\n"
            "# prints it). Created once by `dockguard install`, never overwritten; after editing:\n"
            "#   systemctl reload dockguard-authz   (an invalid file keeps the last good policy)\n")
    settings = []
    if buildkit_enforced:
        settings.append(("rules", "# daemon.json's builder.entitlements refuse --network host and "
                         "security.insecure\n# to BuildKit's API (/grpc), set by `dockguard install`.",
                         'buildkit-session = "off"'))
    if runtime:
        settings.append(("lists", "# no container may skip dockguard-runtime (docker run --runtime runc).",
                         'runtimes = ["dockguard"]'))
    text = head
    for section in ("rules", "lists"):
        body = [f"{why}\n{line}" for sec, why, line in settings
                if sec == section and _accepted(section, line)]
        if body:
            text += f"\n[{section}]\n" + "\n".join(body) + "\n"
    return text


def _accepted(section: str, line: str) -> bool:
    """Whether the installed policy engine knows this setting (components land separately)."""
    import tomllib
    from authz.policy import PolicyError, compile_policy, default_text, _overlay
    base = tomllib.loads(default_text())
    try:
        compile_policy(base, "built-in")
    except PolicyError:
        return True  # a broken built-in policy is not this setting's fault
    try:
        _overlay(base, tomllib.loads(f"[{section}]\n{line}\n"), "policy")
        compile_policy(base, "policy")
    except PolicyError:
        return False
    return True


def unit_text(name: str, exe: str) -> str:
    return data_text(name).replace("@DOCKGUARD@", exe)


def merge_daemon(conf: dict, runtime: dict | None, entitlements: bool) -> tuple[dict, dict, list[str]]:
    """daemon.json with dockguard's keys merged in; (result, what was added, notes). Pure."""
    new = json.loads(json.dumps(conf))
    added: dict = {}
    notes: list[str] = []
    plugins = new.get("authorization-plugins")
    if plugins is None:
        new["authorization-plugins"] = [PLUGIN]
        added["authorization-plugins"] = "key"
    elif not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise InstallError("daemon.json: authorization-plugins is not a list of names; fix it first")
    elif PLUGIN not in plugins:
        new["authorization-plugins"] = plugins + [PLUGIN]
        added["authorization-plugins"] = "item"
        notes.append(f"daemon.json: kept your authorization plugins {plugins}; dockguard added after "
                     "them (dockerd asks each in turn; all must allow)")
    if runtime is not None:
        runtimes = new.setdefault("runtimes", {})
        if not isinstance(runtimes, dict):
            raise InstallError("daemon.json: runtimes is not an object; fix it first")
        if runtimes.get(PLUGIN) != runtime:
            runtimes[PLUGIN] = runtime
            added["runtime"] = True
        default = new.get("default-runtime")
        if default is None:
            new["default-runtime"] = PLUGIN
            added["default-runtime"] = True
        elif default != PLUGIN:
            notes.append(f"daemon.json: kept your default-runtime {default!r}; only containers run with "
                         f"--runtime {PLUGIN} get dockguard's hooks (set default-runtime to "
                         f"{PLUGIN!r} yourself to make it the default)")
    if entitlements:
        builder = new.setdefault("builder", {})
        if not isinstance(builder, dict):
            raise InstallError("daemon.json: builder is not an object; fix it first")
        ents = builder.setdefault("entitlements", {})
        if not isinstance(ents, dict):
            raise InstallError("daemon.json: builder.entitlements is not an object; fix it first")
        for key, value in ENTITLEMENTS.items():
            if key not in ents:
                ents[key] = value
                added.setdefault("entitlements", []).append(key)
            elif ents[key] is not value:
                notes.append(f"daemon.json: kept your builder.entitlements.{key}={json.dumps(ents[key])}; "
                             "the plugin then refuses BuildKit's /grpc and /session (rule buildkit-session)")
    validate_daemon(new)
    return new, added, notes


def entitlements_enforced(conf: dict) -> bool:
    ents = (conf.get("builder") or {}).get("entitlements") or {}
    return all(ents.get(k) is False for k in ENTITLEMENTS)


def validate_daemon(conf: dict) -> None:
    """The checks dockerd makes on these keys at start, so a merge never stops dockerd."""
    plugins = conf.get("authorization-plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise InstallError("daemon.json: authorization-plugins must be a list of names")
    runtimes = conf.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise InstallError("daemon.json: runtimes must be an object")
    for name, rt in runtimes.items():
        if name in BUILTIN_RUNTIMES:
            raise InstallError(f"daemon.json: runtime name {name!r} is reserved by dockerd")
        if not isinstance(rt, dict) or not isinstance(rt.get("path", ""), str):
            raise InstallError(f"daemon.json: runtimes.{name} must be an object with a path")
    default = conf.get("default-runtime")
    if default is not None and default not in runtimes and default not in BUILTIN_RUNTIMES:
        raise InstallError(f"daemon.json: default-runtime {default!r} is not a configured runtime")
    json.loads(json.dumps(conf))


def unmerge_daemon(conf: dict, added: dict, keep_runtime: dict | None) -> dict:
    """daemon.json without what install added (whatever else changed since). Pure."""
    new = json.loads(json.dumps(conf))
    plugins = new.get("authorization-plugins")
    if isinstance(plugins, list) and PLUGIN in plugins:
        rest = [p for p in plugins if p != PLUGIN]
        if rest or added.get("authorization-plugins") != "key":
            new["authorization-plugins"] = rest
        else:
            del new["authorization-plugins"]
    runtimes = new.get("runtimes")
    if isinstance(runtimes, dict) and PLUGIN in runtimes:
        if keep_runtime is not None:
            runtimes[PLUGIN] = keep_runtime
        else:
            del runtimes[PLUGIN]
            if not runtimes:
                del new["runtimes"]
    if new.get("default-runtime") == PLUGIN:
        del new["default-runtime"]
    ents = (new.get("builder") or {}).get("entitlements")
    if isinstance(ents, dict):
        for key in added.get("entitlements", []):
            if ents.get(key) is ENTITLEMENTS[key]:
                del ents[key]
        if not ents:
            del new["builder"]["entitlements"]
        if not new["builder"]:
            del new["builder"]
    validate_daemon(new)
    return new


# daemon.json key -> the dockerd flag that sets it; dockerd refuses to start when one is given
# both ways ("the following directives are specified both as a flag and in the configuration file").
KEY_FLAGS = {"authorization-plugins": "--authorization-plugin", "runtimes": "--add-runtime",
             "default-runtime": "--default-runtime"}
DOCKER_UNITS = ("/etc/systemd/system/docker.service", "/run/systemd/system/docker.service",
                "/lib/systemd/system/docker.service", "/usr/lib/systemd/system/docker.service")


def docker_exec_lines(root: str) -> list[tuple[str, str]]:
    """(file, ExecStart line) of docker.service and its drop-ins, as systemd would read them."""
    files = []
    for unit in DOCKER_UNITS:
        if under(root, unit).is_file():
            files.append(unit)
            break
    for d in ("/etc/systemd/system/docker.service.d", "/run/systemd/system/docker.service.d",
              "/usr/lib/systemd/system/docker.service.d", "/lib/systemd/system/docker.service.d"):
        try:
            files += sorted(os.path.join(d, f) for f in os.listdir(under(root, d)) if f.endswith(".conf"))
        except OSError:
            pass
    out = []
    for f in files:
        for line in (read(root, f) or "").splitlines():
            if line.strip().startswith("ExecStart="):
                out.append((f, line.strip()))
    return out


def flag_conflicts(root: str, before: dict, after: dict) -> None:
    """Refuse to add a daemon.json key that docker.service also passes as a flag."""
    for key, flag in KEY_FLAGS.items():
        if key in before or key not in after:
            continue
        for f, line in docker_exec_lines(root):
            if re.search(rf"(^|\s){re.escape(flag)}(=|\s|$)", line):
                raise InstallError(
                    f"{f} starts dockerd with {flag}, and dockerd refuses to start when "
                    f"{key!r} is also in daemon.json. Move that setting into "
                    f"/etc/docker/daemon.json (a drop-in overriding ExecStart), then rerun; "
                    "nothing was changed")


def dockerd_validate(conf: dict, dockerd: str | None) -> list[str]:
    """`dockerd --validate` (dockerd 23 and newer) on the merged daemon.json, before writing
    it: an error stops the install. Older dockerds lack the flag: a note says so."""
    exe = dockerd or shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not os.access(exe, os.X_OK):
        return [f"daemon.json not checked by dockerd ({exe} not found)"]
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="dockguard-daemon-") as f:
        f.write(dump_json(conf))
        f.flush()
        try:
            res = subprocess.run([exe, "--validate", "--config-file", f.name], capture_output=True,
                                 text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [f"daemon.json not checked by dockerd ({exc})"]
    out = (res.stdout + res.stderr).strip()
    if res.returncode == 0:
        return []
    if "unknown flag: --validate" in out:
        return [f"daemon.json checked by dockguard only ({exe} predates --validate)"]
    raise InstallError(f"dockerd --validate refuses the merged daemon.json: "
                       f"{out.splitlines()[-1] if out else res.returncode}; nothing was changed")


def dump_json(conf: dict) -> str:
    return json.dumps(conf, indent=2) + "\n"


# ---- the edge: reading and writing under the root ---------------------------------------

def under(root: str, path: str) -> Path:
    return Path(root) / path.lstrip("/")


def read(root: str, path: str) -> str | None:
    try:
        return under(root, path).read_text()
    except FileNotFoundError:
        return None


def read_daemon(root: str) -> tuple[dict, str | None]:
    path = under(root, DAEMON_JSON)
    if path.is_symlink():
        raise InstallError(f"{DAEMON_JSON} is a symlink (to {os.readlink(path)}): merge "
                           "plugins/daemon.json.example into its target by hand, or replace the "
                           "link with a file; nothing was changed")
    text = read(root, DAEMON_JSON)
    if text is None or not text.strip():
        return {}, text
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise InstallError(f"{DAEMON_JSON} is not valid JSON ({exc}); fix it first, nothing was changed")
    if not isinstance(conf, dict):
        raise InstallError(f"{DAEMON_JSON} is not a JSON object; fix it first, nothing was changed")
    return conf, text


def read_state(root: str) -> dict:
    text = read(root, STATE)
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def containers_with_runtime(root: str, docker_root: str, name: str) -> list[str]:
    """Containers (any state) created with runtime `name`, from dockerd's own records."""
    found = []
    base = under(root, docker_root) / "containers"
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    for cid in entries:
        try:
            hc = json.loads((base / cid / "hostconfig.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(hc, dict) and hc.get("Runtime") == name:
            found.append(cid[:12])
    return found


def write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    util.atomic_write(path, text, mode, root_owned=True)


def diff(path: str, old: str | None, new: str | None) -> str:
    a = (old or "").splitlines(keepends=True)
    b = (new or "").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, "/dev/null" if old is None else f"a{path}",
                                 "/dev/null" if new is None else f"b{path}")
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


def changes(root: str, plan: Plan) -> list[tuple[Want, str | None]]:
    """The files whose content or mode differs from the plan: (want, current text)."""
    out = []
    wants = list(plan.files)
    if plan.daemon is not None:
        wants.append(Want(DAEMON_JSON, None))  # placeholder, compared on parsed JSON below
    for w in wants:
        cur = read(root, w.path)
        if w.path == DAEMON_JSON:
            conf, _ = read_daemon(root)
            if conf != plan.daemon or cur is None:
                out.append((Want(DAEMON_JSON, dump_json(plan.daemon)), cur))
            continue
        if w.once and cur is not None:
            continue
        if cur != w.text:
            out.append((w, cur))
        elif cur is not None and stat.S_IMODE(under(root, w.path).stat().st_mode) != w.mode:
            out.append((w, cur))
    state_text = dump_json(plan.state) if plan.state is not None else None
    cur = read(root, STATE)
    if cur != state_text:
        out.append((Want(STATE, state_text, 0o600), cur))
    return out


def apply(root: str, plan: Plan, dry_run: bool) -> int:
    todo = changes(root, plan)
    if dry_run:
        for w, cur in todo:
            if cur is not None and cur == w.text:    # same content, other mode
                old = stat.S_IMODE(under(root, w.path).stat().st_mode)
                print(f"mode of {w.path}: {old:o} -> {w.mode:o}")
            print(diff(w.path, cur, w.text), end="")
        print(f"dry run: {len(todo)} file(s) would change" if todo else "dry run: no changes")
        return len(todo)
    for w, cur in todo:
        target = under(root, w.path)
        mode = w.mode
        if w.path == DAEMON_JSON and cur is not None:
            mode = stat.S_IMODE(target.stat().st_mode)    # the operator's mode stays
            backup = target.with_name(f"daemon.json.dockguard-{time.strftime('%Y%m%dT%H%M%S')}.bak")
            n = 1
            while backup.exists():
                backup = backup.with_name(f"{backup.name[:-4]}-{n}.bak")
                n += 1
            shutil.copy2(target, backup)
            print(f"backed up {w.path} to {backup}")
        if w.text is None:
            target.unlink(missing_ok=True)
            print(f"removed {target}")
            _prune(root, target.parent)
        else:
            write_atomic(target, w.text, mode)
            print(f"wrote {target}")
    if not todo:
        print("nothing to change")
    return len(todo)


def _prune(root: str, d: Path) -> None:
    """Remove directories install created that are now empty (never the root's own dirs)."""
    mine = {under(root, p) for p in (os.path.dirname(DROPIN), CONF_DIR, os.path.dirname(STATE))}
    if d in mine:
        try:
            d.rmdir()
        except OSError:
            pass


def systemctl(root: str, *args: str) -> None:
    """Best effort: report what could not be done, never fail the install for it."""
    cmd = ["systemctl"] + ([f"--root={root}"] if root != "/" else []) + list(args)
    exe = shutil.which("systemctl")
    if exe is None:
        print(f"skipped: {' '.join(cmd)} (no systemctl here); run it on the host", file=sys.stderr)
        return
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        print(f"skipped: {' '.join(cmd)} timed out; run it again later", file=sys.stderr)
        return
    if res.returncode == 0:
        print(f"ran: {' '.join(cmd)}")
    else:
        why = (res.stderr or res.stdout).strip().splitlines()
        print(f"not done: {' '.join(cmd)} ({why[-1] if why else f'exit {res.returncode}'}); "
              "run it when systemd is up", file=sys.stderr)


def systemd_running(root: str) -> bool:
    return root == "/" and os.path.isdir("/run/systemd/system")


# ---- install ---------------------------------------------------------------------------

def dockguard_exe() -> str:
    """This installation's `dockguard` console script (never a pyenv shim)."""
    exe = Path(sys.prefix) / "bin" / "dockguard"
    if not exe.exists():
        raise InstallError(f"{exe} not found; install the package into a virtualenv first "
                           "(python3 -m venv /opt/dockguard && /opt/dockguard/bin/pip install dockguard)")
    return str(exe)


def install_plan(args, root: str) -> Plan:
    plan = Plan()
    exe = dockguard_exe()
    plan.files.append(Want(SPEC, data_text("dockguard.spec")))
    for unit in UNITS:
        plan.files.append(Want(f"/etc/systemd/system/{unit}", unit_text(unit, exe)))
    plan.files.append(Want(DROPIN, data_text("docker-dropin.conf")))
    plan.files.append(Want(f"{CONF_DIR}/authz.env", data_text("authz.env"), 0o644, once=True))
    plan.files.append(Want(f"{CONF_DIR}/healthd.env", data_text("healthd.env"), 0o644, once=True))
    runtime = None
    if not args.no_hooks:
        from hookbin import install as hooks
        from hookbin import spec as hookspec
        hooks_dir = hookspec.hooks_dir(args.docker_root)
        real = under(root, hooks_dir)
        if real.exists() and stat.S_IMODE(real.stat().st_mode) & (stat.S_IWGRP | stat.S_IWOTH):
            raise InstallError(f"{real} is writable by group or others; fix its mode first")
        py = hooks.real_python()
        for name, module in hooks.HOOK_PROGRAMS.items():
            plan.files.append(Want(os.path.join(hooks_dir, name),
                                   hooks.render_hook(name, module, py, hooks.PKG_ROOT), 0o755))
        runc = hooks.which_abs("runc", util.RUNC_CANDIDATES)
        grep = hooks.which_abs("grep", ("/usr/bin/grep", "/bin/grep"))
        front = os.path.join(args.bin_dir, hooks.RUNTIME_NAME)
        plan.files.append(Want(front, hooks.render_front(runc, py, hooks.PKG_ROOT, grep, args.docker_root),
                               0o755))
        runtime = hooks.runtime_config(front, args.docker_root, args.hook_spec)
    if args.creds:  # docker-credential-dockguard where the docker CLI finds it (dockguard/creds)
        from dockguard.creds import enable as creds
        plan.files.append(Want(os.path.join(args.bin_dir, creds.HELPER_NAME), creds.helper_script(), 0o755))
    conf, _ = read_daemon(root)
    state = read_state(root)
    merged, added, notes = merge_daemon(conf, runtime, entitlements=not args.no_entitlements)
    plan.notes += notes
    if merged != conf:
        flag_conflicts(root, conf, merged)
        plan.notes += dockerd_validate(merged, args.dockerd)
    # What earlier runs added stays recorded as added (a re-run finds it already there).
    prev = state.get("daemon_json", {})
    for key, value in prev.items():
        if key == "entitlements":
            added["entitlements"] = sorted(set(added.get("entitlements", [])) | set(value))
        else:
            added.setdefault(key, value)
    plan.daemon = merged
    # runtimes = ["dockguard"] only when dockguard is the default: else every plain `docker run`
    # would be refused under the operator's kept default-runtime.
    only_ours = runtime is not None and merged.get("default-runtime") == PLUGIN
    plan.files.append(Want(POLICY, policy_override(entitlements_enforced(merged), only_ours),
                           0o644, once=True))
    files = sorted({w.path for w in plan.files if not w.once} | set(state.get("files", [])))
    created = dict(state.get("created", {}))
    for w in plan.files:
        if w.once and read(root, w.path) is None:
            created[w.path] = w.text
    plan.state = {"version": _version(), "docker_root": args.docker_root, "files": files,
                  "created": created, "daemon_json": added}
    return plan


def _version() -> str:
    from dockguard import __version__
    return __version__


def cmd_install(args) -> int:
    if os.geteuid() != 0 and not args.dry_run:
        print("dockguard install: run as root (the hook programs must be root-owned)", file=sys.stderr)
        return 1
    root = args.root
    if (rc := preflight.install_gate(args)) != 0:  # violating containers nothing would judge
        return rc
    try:
        plan = install_plan(args, root)
        n = apply(root, plan, args.dry_run)
    except InstallError as exc:
        print(f"dockguard: error: install: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - e.g. hookbin's InstallError: a message, no traceback
        print(f"dockguard: error: install: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    for note in plan.notes:
        print(f"note: {note}")
    from dockguard.creds.enable import enable_users  # --creds USER, once the helper is in place
    creds_rc = enable_users(root, args.creds, args.dry_run) if args.creds else 0
    if args.dry_run:
        return creds_rc
    systemctl(root, "enable", *UNITS)
    if systemd_running(root):
        systemctl(root, "daemon-reload")
        # an upgrade first: a running plugin of an older version (which bound the socket
        # itself) is replaced before the socket unit takes the path
        systemctl(root, "try-restart", "dockguard-authz.service", "dockguard-healthd.service")
        systemctl(root, "start", "dockguard-authz.socket")
    if n:
        print("\nNext: systemctl restart docker   (dockerd reads daemon.json and the plugin at start; "
              "stops running containers unless live-restore is on)")
    return creds_rc


# ---- uninstall -------------------------------------------------------------------------

def uninstall_plan(args, root: str) -> Plan:
    plan = Plan()
    state = read_state(root)
    docker_root = args.docker_root or state.get("docker_root") or util.DEFAULT_DOCKER_ROOT
    known = set(state.get("files", []))
    if not state:  # installed by an older version: the files it is known to write
        from hookbin import install as hooks
        known = {SPEC, DROPIN, *(f"/etc/systemd/system/{u}" for u in UNITS),
                 *(os.path.join(docker_root, "hooks", h) for h in hooks.HOOK_PROGRAMS),
                 os.path.join("/usr/local/bin", hooks.RUNTIME_NAME)}
    for path in sorted(known):
        plan.files.append(Want(path, None))
    for path, text in state.get("created", {}).items():
        cur = read(root, path)
        if cur is None:
            continue
        if cur == text:
            plan.files.append(Want(path, None))
        else:
            plan.notes.append(f"kept {path}: you changed it (remove it by hand if unwanted)")
    conf, text = read_daemon(root)
    users = containers_with_runtime(root, docker_root, PLUGIN)
    keep = None
    if users and isinstance(conf.get("runtimes"), dict) and PLUGIN in conf["runtimes"]:
        from hookbin import install as hooks
        runc = hooks.which_abs("runc", util.RUNC_CANDIDATES)
        keep = {"path": runc}
        plan.notes.append(f"daemon.json: kept a {PLUGIN!r} runtime pointing at plain {runc}: "
                          f"{len(users)} container(s) were created with it ({', '.join(users[:5])}"
                          f"{', ...' if len(users) > 5 else ''}); run `dockguard uninstall` again "
                          "once they are removed to drop it")
    if text is not None:
        plan.daemon = unmerge_daemon(conf, state.get("daemon_json", {}), keep)
    plan.state = None
    if keep is not None:  # remembered, so a later uninstall drops the runc entry
        plan.state = {"version": _version(), "docker_root": docker_root, "files": [], "created": {},
                      "daemon_json": {"runtime": True}}
    return plan


def cmd_uninstall(args) -> int:
    if os.geteuid() != 0 and not args.dry_run:
        print("dockguard uninstall: run as root", file=sys.stderr)
        return 1
    root = args.root
    try:
        plan = uninstall_plan(args, root)
        if not args.dry_run:
            systemctl(root, "disable", *UNITS)
            if systemd_running(root):
                systemctl(root, "stop", "dockguard-healthd.service", "dockguard-authz.service",
                          "dockguard-authz.socket")
        apply(root, plan, args.dry_run)
    except InstallError as exc:
        print(f"dockguard: error: uninstall: {exc}", file=sys.stderr)
        return 1
    for note in plan.notes:
        print(f"note: {note}")
    if not args.dry_run:
        if systemd_running(root):
            systemctl(root, "daemon-reload")
        print("\nNext: systemctl restart docker   (dockerd drops the plugin and runtime at start)")
    return 0


def register(sub, name):
    if name == "uninstall":
        p = sub.add_parser(name, help="remove what `dockguard install` added (daemon.json: only its keys)")
        p.add_argument("--root", default="/", help="act under this directory instead of / (default /)")
        p.add_argument("--docker-root", default=None,
                       help="Docker Root Dir (default: the one install recorded)")
        p.add_argument("--dry-run", action="store_true", help="print the changes as a diff, change nothing")
        p.set_defaults(func=cmd_uninstall)
        return
    p = sub.add_parser(name, help="install units, plugin spec, policy, hook programs and runtime; "
                                  "merge daemon.json")
    p.add_argument("--root", default="/", help="stage under this directory instead of / (default /)")
    p.add_argument("--dry-run", action="store_true", help="print the changes as a diff, change nothing")
    p.add_argument("--docker-root", default=util.DEFAULT_DOCKER_ROOT, help="Docker Root Dir (docker info)")
    p.add_argument("--bin-dir", default="/usr/local/bin", help="where dockguard-runtime goes")
    p.add_argument("--hook-spec", default="/etc/docker/hookspec.json",
                   help="the daemon-wide hook-spec the runtime reads (need not exist: then no "
                        "daemon-wide hooks)")
    p.add_argument("--no-hooks", action="store_true", help="skip the hook programs and the runtime")
    p.add_argument("--dockerd", default=None,
                   help="dockerd binary that checks the merged daemon.json (--validate, dockerd "
                        ">= 23; default: dockerd on PATH)")
    p.add_argument("--no-entitlements", action="store_true",
                   help="leave daemon.json's builder.entitlements alone (the plugin then refuses "
                        "BuildKit's /grpc and /session)")
    preflight.add_install_options(p)
    p.add_argument("--creds", action="append", default=[], metavar="USER",
                   help="put docker-credential-dockguard in --bin-dir and enable it in USER's "
                        "~/.docker/config.json, encrypting its plain-text logins (repeatable)")
    p.set_defaults(func=cmd_install)
