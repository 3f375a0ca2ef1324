"""Run one hook-spec hook for runc, so that a faulty hook cannot hold the container up.

runc (1.1.x) runs a hook with its stdout and stderr on pipes and waits until both close:
a hook that leaves a child holding them (`daemon &`) keeps `docker run` waiting for that
child, past any timeout (runc kills only the hook itself, then still waits); and a hook
that writes megabytes has them all carried into the error dockerd gets. So the runtime
puts each hook-spec hook behind this runner (`wrap`):

- the hook runs in a process group of its own, its stdin the state runc passes, its stdout
  and stderr a pipe that only this runner reads;
- the runner waits for the hook process, not for the pipe: a child it leaves behind holds
  nothing runc waits on;
- past its timeout the whole group is killed, and the message says so;
- what the hook wrote comes back on stderr (runc puts it in its error), its last 16 KiB.

Started by runc as `python -I -S hookrun.py TIMEOUT PATH ARG0 ARGS...` with the hook's env:
-I (no PYTHON* variables, no user site) because that env comes from a hook spec.
"""
import os
import select
import signal
import sys
import time

KEEP = 16 * 1024
RUNC_MARGIN = 2  # runc's own timeout, a backstop behind ours


def wrap(spec: dict, python: str | None = None) -> dict:
    """The spec with each hook run through this runner (pure; `python` defaults to ours)."""
    python = python or sys.executable
    me = os.path.abspath(__file__)
    out = {}
    for phase, hooks in spec.items():
        out[phase] = []
        for h in hooks or ():
            t = h.get("timeout")
            args = h.get("args") or [h["path"]]
            w = {"path": python, "args": [python, "-I", "-S", me, str(t or 0), h["path"], *args],
                 "env": list(h.get("env") or [])}
            if t:
                w["timeout"] = t + RUNC_MARGIN
            out[phase].append(w)
    return out


def unwrap(hook: dict) -> dict:
    """The hook `wrap` made this entry from ({"path", "args"}), or `hook` itself."""
    args = hook.get("args") or []
    if len(args) >= 7 and args[1:3] == ["-I", "-S"] and args[3] == os.path.abspath(__file__):
        return {"path": args[5], "args": args[6:]}
    return hook


def _run(timeout: float, path: str, argv: list[str]) -> int:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the hook
        try:
            os.setpgid(0, 0)
            os.dup2(w, 1)
            os.dup2(w, 2)
            os.close(r)
            os.close(w)
            os.execv(path, argv)
        except BaseException as exc:  # noqa: BLE001 - report and leave, never return to the runner
            os.write(2, f"cannot run hook {path}: {exc}\n".encode())
        os._exit(127)
    os.close(w)
    try:
        os.setpgid(pid, pid)  # also from here: no race with the child's own call
    except OSError:
        pass
    waiter = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    tail = b""
    dropped = 0
    status = None
    open_pipe = True
    while status is None:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([waiter, r] if open_pipe else [waiter], [], [], wait)
        if r in ready:
            chunk = os.read(r, 65536)
            if not chunk:
                open_pipe = False
            tail += chunk
            if len(tail) > KEEP:
                dropped += len(tail) - KEEP
                tail = tail[-KEEP:]
        if waiter in ready:
            status = os.waitpid(pid, 0)[1]
        elif not ready and deadline is not None:  # timed out
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            _emit(tail, dropped)
            sys.stderr.write(f"dockguard: hook {path} ran past its timeout of {timeout:g}s: "
                             "killed with its process group\n")
            return 124
    # the hook is done: take what is already in the pipe, never wait for its children
    os.set_blocking(r, False)
    try:
        while chunk := os.read(r, 65536):
            tail = (tail + chunk)
            if len(tail) > KEEP:
                dropped += len(tail) - KEEP
                tail = tail[-KEEP:]
    except BlockingIOError:
        pass
    _emit(tail, dropped)
    if os.WIFSIGNALED(status):
        sys.stderr.write(f"dockguard: hook {path} killed by signal {os.WTERMSIG(status)}\n")
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _emit(tail: bytes, dropped: int) -> None:
    if dropped:
        sys.stderr.write(f"[dockguard: first {dropped} bytes of the hook's output left out]\n")
    sys.stderr.flush()
    view = memoryview(tail)
    while view:  # a pipe may take less than asked
        view = view[os.write(2, view):]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        sys.stderr.write("usage: hookrun.py TIMEOUT PATH ARG0 [ARGS...]\n")
        return 2
    try:
        timeout = float(argv[0])
    except ValueError:
        sys.stderr.write(f"hookrun: bad timeout {argv[0]!r}\n")
        return 2
    return _run(timeout, argv[1], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
