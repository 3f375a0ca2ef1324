"""Does a custom seccomp profile allow what Docker's default profile forbids?

The profile (Docker's JSON format, as the CLI sends it inline in `seccomp=...`) is compiled
with libseccomp (pyseccomp) exactly as a runtime would compile it, exported as classic BPF,
and the BPF is run here on probe system calls that the default profile refuses: module
loading, mounts, namespace creation, kexec, keyrings, raw I/O ports, the clock, BPF, ...
A probe the filter answers with ALLOW (or LOG, TRACE, NOTIFY: no kernel-side refusal) is a
problem. Capability-gated rules (`includes.caps`) apply only when the container would have
the capability, so a copy of Docker's default profile passes.
"""
from __future__ import annotations

import os
import struct

from . import gojson
from dockguard.util import DockguardError

# Docker's default capabilities (guide: docker默认的权能配置分析).
DEFAULT_CAPS = frozenset({"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
                          "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
                          "AUDIT_WRITE"})

CLONE_NS_FLAGS = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
CLONE_NEWUSER = 0x10000000

# (syscall, args) the default profile refuses for a container with default capabilities.
PROBES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("mount", ()), ("umount2", ()), ("pivot_root", ()), ("reboot", ()), ("kexec_load", ()),
    ("kexec_file_load", ()), ("init_module", ()), ("finit_module", ()), ("delete_module", ()),
    ("bpf", ()), ("perf_event_open", ()), ("unshare", (CLONE_NEWUSER,)), ("setns", ()),
    ("keyctl", ()), ("add_key", ()), ("request_key", ()), ("open_by_handle_at", ()),
    ("name_to_handle_at", ()), ("swapon", ()), ("swapoff", ()), ("acct", ()),
    ("settimeofday", ()), ("clock_settime", ()), ("iopl", ()), ("ioperm", ()), ("syslog", ()),
    ("quotactl", ()), ("lookup_dcookie", ()), ("uselib", ()), ("create_module", ()),
    ("get_kernel_syms", ()), ("query_module", ()), ("nfsservctl", ()), ("_sysctl", ()),
    ("fanotify_init", ()), ("clone", (CLONE_NEWUSER,)), ("vhangup", ()),
)

ACTIONS_ALLOWING = {0x7FFF0000: "ALLOW", 0x7FFC0000: "LOG", 0x7FF00000: "TRACE", 0x7FC00000: "NOTIFY"}
AUDIT_ARCH_X86_64 = 0xC000003E


class ProfileError(DockguardError, ValueError):
    pass


# Docker's Seccomp struct fields (profiles/seccomp/seccomp.go), as their JSON names.
_FIELDS = ("defaultAction", "defaultErrnoRet", "architectures", "archMap", "architecture", "subArchitectures",
           "syscalls", "flags", "listenerPath", "listenerMetadata", "names", "name", "action",
           "errnoRet", "args", "comment", "includes", "excludes", "caps", "arches", "minKernel",
           "index", "value", "valueTwo", "op")
_BY_FOLD = {gojson.fold(f): f for f in _FIELDS}


def _as_go(value):
    """The profile as dockerd's json.Unmarshal fills its struct: keys matched case-insensitively
    (`SYSCALLS` is `syscalls`), repeated keys merged or replaced as Go does (the last
    `defaultAction` wins), ambiguous keys refused (gojson.BodyError)."""
    if isinstance(value, gojson.Obj):
        return {_BY_FOLD.get(k, k): _as_go(v) for k, v in value._index().items()}
    if isinstance(value, list):
        return [_as_go(v) for v in value]
    return value


def _action(pyseccomp, name: str, errno_ret):
    n = (name or "").upper()
    table = {
        "SCMP_ACT_ALLOW": lambda: pyseccomp.ALLOW,
        "SCMP_ACT_LOG": lambda: pyseccomp.LOG,
        "SCMP_ACT_KILL": lambda: pyseccomp.KILL,
        "SCMP_ACT_KILL_THREAD": lambda: pyseccomp.KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS": lambda: pyseccomp.KILL_PROCESS,
        "SCMP_ACT_TRAP": lambda: pyseccomp.TRAP,
        "SCMP_ACT_ERRNO": lambda: pyseccomp.ERRNO(errno_ret if errno_ret is not None else 1),
        "SCMP_ACT_TRACE": lambda: pyseccomp.TRACE(errno_ret or 0),
        "SCMP_ACT_NOTIFY": lambda: pyseccomp.NOTIFY,
    }
    if n not in table:
        raise ProfileError(f"unknown action {name!r}")
    return table[n]()


_OPS = {"SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE", "SCMP_CMP_EQ": "EQ",
        "SCMP_CMP_GE": "GE", "SCMP_CMP_GT": "GT", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}


def _kernel_at_least(v: str) -> bool:
    try:
        want = tuple(int(x) for x in v.split(".")[:2])
        have = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
        return have >= want
    except ValueError:
        return True


def _filter_applies(filt, caps: frozenset[str]) -> bool:
    if not isinstance(filt, dict):
        return True
    need = {c.upper().removeprefix("CAP_") for c in filt.get("caps") or []}
    arches = filt.get("arches") or []
    if need and not need <= caps:
        return False
    if arches and not {"amd64", "x86_64", "x32"} & set(arches):
        return False
    mk = filt.get("minKernel")
    if mk and not _kernel_at_least(str(mk)):
        return False
    return True


def _excluded(filt, caps: frozenset[str]) -> bool:
    if not isinstance(filt, dict) or not filt:
        return False
    ex = {c.upper().removeprefix("CAP_") for c in filt.get("caps") or []}
    if ex and ex & caps:
        return True
    arches = filt.get("arches") or []
    if arches and {"amd64", "x86_64", "x32"} & set(arches):
        return True
    mk = filt.get("minKernel")
    return bool(mk) and _kernel_at_least(str(mk))


def compile_profile(profile: dict, caps: frozenset[str]) -> bytes:
    """Profile -> the classic BPF program libseccomp generates for this (native) arch."""
    import pyseccomp
    default_errno = profile.get("defaultErrnoRet")
    filt = pyseccomp.SyscallFilter(_action(pyseccomp, profile.get("defaultAction", ""), default_errno))
    for entry in profile.get("syscalls") or []:
        if not isinstance(entry, dict):
            raise ProfileError("each syscalls entry must be an object")
        if not _filter_applies(entry.get("includes"), caps) or _excluded(entry.get("excludes"), caps):
            continue
        names = list(entry.get("names") or [])
        if entry.get("name"):
            names.append(entry["name"])
        action = _action(pyseccomp, entry.get("action", ""), entry.get("errnoRet", default_errno))
        args = []
        for a in entry.get("args") or []:
            if not isinstance(a, dict):
                raise ProfileError("each args entry must be an object")
            op = _OPS.get(str(a.get("op", "")).upper())
            if op is None:
                raise ProfileError(f"unknown comparison {a.get('op')!r}")
            idx = int(a.get("index", 0))
            if op == "MASKED_EQ":
                args.append(pyseccomp.Arg(idx, getattr(pyseccomp, op), int(a.get("value", 0)),
                                          int(a.get("valueTwo", 0))))
            else:
                args.append(pyseccomp.Arg(idx, getattr(pyseccomp, op), int(a.get("value", 0))))
        for name in names:
            try:
                pyseccomp.resolve_syscall(pyseccomp.system_arch(), name)
            except Exception:  # noqa: BLE001 - unknown on this arch: runtimes skip it too
                continue
            try:
                filt.add_rule(action, name, *args)
            except OSError:
                continue  # same action as the default, or an unsatisfiable rule: no effect
    fd = os.memfd_create("dockguard-seccomp")
    with os.fdopen(fd, "w+b") as f:
        filt.export_bpf(f)
        f.seek(0)
        return f.read()


def run_bpf(prog: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    """A classic-BPF interpreter over struct seccomp_data; returns the filter's verdict."""
    a6 = list(args) + [0] * (6 - len(args))
    data = struct.pack("<iIQ6Q", nr, arch, 0, *a6)
    insns = [struct.unpack_from("<HBBI", prog, i) for i in range(0, len(prog), 8)]
    A = X = 0
    mem = [0] * 16
    pc = 0
    for _ in range(4096):
        code, jt, jf, k = insns[pc]
        cls = code & 0x07
        pc += 1
        if cls == 0x00:  # LD
            mode = code & 0xE0
            if mode == 0x20:
                A = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x00:
                A = k
            elif mode == 0x60:
                A = mem[k]
            elif mode == 0x80:
                A = len(data)
            else:
                raise ProfileError(f"unsupported BPF load {code:#x}")
        elif cls == 0x01:  # LDX
            mode = code & 0xE0
            X = k if mode == 0x00 else mem[k] if mode == 0x60 else len(data)
        elif cls == 0x02:
            mem[k] = A
        elif cls == 0x03:
            mem[k] = X
        elif cls == 0x04:  # ALU
            op, src = code & 0xF0, (X if code & 0x08 else k)
            A = {0x00: lambda: A + src, 0x10: lambda: A - src, 0x20: lambda: A * src,
                 0x30: lambda: A // src if src else 0, 0x40: lambda: A | src, 0x50: lambda: A & src,
                 0x60: lambda: A << src, 0x70: lambda: A >> src, 0x80: lambda: -A,
                 0x90: lambda: A % src if src else 0, 0xA0: lambda: A ^ src}[op]() & 0xFFFFFFFF
        elif cls == 0x05:  # JMP
            op, src = code & 0xF0, (X if code & 0x08 else k)
            if op == 0x00:
                pc += k
                continue
            cond = {0x10: A == src, 0x20: A > src, 0x30: A >= src, 0x40: bool(A & src)}[op]
            pc += jt if cond else jf
        elif cls == 0x06:  # RET
            return A if (code & 0x18) == 0x10 else k
        elif cls == 0x07:
            if code & 0xF8 == 0x00:
                X = A
            else:
                A = X
    raise ProfileError("BPF program does not terminate")


def profile_problems(text: str, added_caps: frozenset[str] = frozenset()) -> list[str]:
    """Problems of an inline profile: invalid, or allowing calls the default forbids."""
    try:
        profile = _as_go(gojson.decode(text))
    except gojson.BodyError as exc:
        return [f"is not valid JSON ({exc})"]
    if not isinstance(profile, dict):
        return ["is not a JSON object"]
    caps = DEFAULT_CAPS | added_caps
    try:
        prog = compile_profile(profile, caps)
        import pyseccomp
        arch = pyseccomp.system_arch()
        allowed = []
        for name, args in PROBES:
            try:
                nr = pyseccomp.resolve_syscall(arch, name)
            except Exception:  # noqa: BLE001 - not on this arch
                continue
            if nr < 0:
                continue
            verdict = run_bpf(prog, nr, args) & 0xFFFF0000
            if verdict in ACTIONS_ALLOWING:
                allowed.append(name)
    except ProfileError as exc:
        return [f"cannot be compiled: {exc}"]
    except (TypeError, ValueError, OSError) as exc:
        return [f"cannot be compiled: {exc}"]
    if allowed:
        return [f"allows {', '.join(allowed)}, which Docker's default profile forbids"]
    return []
