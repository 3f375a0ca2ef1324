"""The three kinds of check: exec (Docker exec API), tcp and http (from the host, in the
container's own network namespace).

Host probes need nothing inside the image and no published port: a socket created while a
thread is inside a network namespace stays bound to that namespace, so the loop thread
setns()es into the container's netns, creates a non-blocking socket, and returns to the
host's netns at once (see NetnsSockets); the asyncio loop then uses the socket like any
other. A TCP probe to loopback is decided inside connect() itself, so it costs a few
syscalls and no task.

Every probe returns (exit_code, output): 0 = success, like the engine's probes; a timeout is
exit code -1 with the engine's wording.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import json
import logging
import os
import select
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

from .machine import EXIT_TIMEOUT, MAX_OUTPUT

log = logging.getLogger("healthd.probes")
CLONE_NEWNET = 0x40000000
API_TIMEOUT = 30.0      # a dockerd that does not answer an exec create/inspect in this long
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Python 3.11 has no os.setns: call libc's."""
    if _libc.setns(fd, nstype) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def timeout_output(timeout: float) -> str:
    return f"Health check exceeded timeout ({timeout:g}s)"


class NetnsSockets:
    """Creates sockets inside other network namespaces.

    The calling thread enters the container's netns for the duration of one socket() call
    and returns to the host's netns before anything else can run on it (the loop is single-
    threaded and this is synchronous): about 20 us, against ~100 us for handing the work to
    a helper thread and back. Failing to return home would leave the thread in the wrong
    namespace, so that is fatal, not an exception to be caught.
    """

    def __init__(self) -> None:
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def create(self, nsfd: int) -> socket.socket:
        setns(nsfd)
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
                                 | socket.SOCK_CLOEXEC)
        finally:
            try:
                setns(self._home)
            except OSError as exc:   # pragma: no cover - the kernel refused to let us back
                log.critical("cannot return to the host network namespace: %s", exc)
                os._exit(70)

    def close(self) -> None:
        os.close(self._home)


def open_netns(pid: int) -> int:
    """An fd on the netns of host pid `pid` (kept while watched, so setns needs no lookup)."""
    return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


async def wait_connected(sock: socket.socket) -> int:
    """After EINPROGRESS: wait until writable, return SO_ERROR (0 = connected)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fd = sock.fileno()
    loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await fut
    finally:
        loop.remove_writer(fd)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def tcp_start(sockets: NetnsSockets, nsfd: int, port: int) -> tuple[socket.socket | None, int]:
    """Begin a TCP probe synchronously. Loopback connects complete (or are refused) inside
    connect() itself, so the common case needs no task, no future and no wakeup:
    returns (None, errno) when decided, (sock, EINPROGRESS) when the caller must wait."""
    sock = sockets.create(nsfd)
    err = sock.connect_ex(("127.0.0.1", port))
    if err == errno.EINPROGRESS:
        # Linux answers EINPROGRESS even when the loopback handshake already completed in
        # this very syscall: look once, without waiting, before going asynchronous.
        p = select.poll()
        p.register(sock, select.POLLOUT)
        if not p.poll(0):
            return sock, err
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    sock.close()
    return None, err


def tcp_result(port: int, err: int) -> tuple[int, str]:
    if err:
        return 1, f"connect 127.0.0.1:{port}: {os.strerror(err)}"
    return 0, ""


async def tcp_finish(sock: socket.socket, port: int, timeout: float) -> tuple[int, str]:
    try:
        async with asyncio.timeout(timeout):
            err = await wait_connected(sock)
    except TimeoutError:
        return EXIT_TIMEOUT, timeout_output(timeout)
    finally:
        sock.close()
    return tcp_result(port, err)


async def tcp_probe(sockets: NetnsSockets, nsfd: int, port: int, timeout: float) -> tuple[int, str]:
    try:
        sock, err = tcp_start(sockets, nsfd, port)
    except OSError as exc:
        return 1, f"tcp probe: {exc}"
    if sock is None:
        return tcp_result(port, err)
    return await tcp_finish(sock, port, timeout)


async def http_probe(sockets: NetnsSockets, nsfd: int, port: int, path: str,
                     timeout: float) -> tuple[int, str]:
    """GET path; 2xx and 3xx succeed. Output: the status line (and why, on failure)."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            sock = sockets.create(nsfd)
            try:
                err = sock.connect_ex(("127.0.0.1", port))
                if err == errno.EINPROGRESS:
                    err = await wait_connected(sock)
                if err:
                    return tcp_result(port, err)
                req = (f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                       "User-Agent: dockguard-healthd\r\nConnection: close\r\n\r\n").encode()
                await loop.sock_sendall(sock, req)
                buf = b""
                while b"\n" not in buf and len(buf) < MAX_OUTPUT:
                    chunk = await loop.sock_recv(sock, 1024)
                    if not chunk:
                        break
                    buf += chunk
            finally:
                sock.close()
    except TimeoutError:
        return EXIT_TIMEOUT, timeout_output(timeout)
    except OSError as exc:
        return 1, f"http probe: {exc}"
    line = buf.split(b"\n", 1)[0].strip().decode("latin-1")
    parts = line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return 1, f"not an HTTP response: {line[:200]!r}"
    code = int(parts[1])
    return (0 if 200 <= code < 400 else 1), line


class _Job:
    def __init__(self) -> None:
        self.exec_id: str | None = None
        self.cancelled = False
        self.lock = threading.Lock()


def kill_tree(pid: int) -> None:
    """SIGKILL a process and its descendants (the exec'd shell and what it started)."""
    import psutil
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.Error:
        return
    for p in procs:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ExecRunner:
    """Runs `dockguard.health.cmd` through the exec API in a small pool of threads (the
    docker SDK blocks); on timeout the exec'd process tree is killed, not left running."""

    def __init__(self, client_factory, workers: int = 16) -> None:
        self._factory = client_factory
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="exec")
        self._jobs: set[_Job] = set()

    def _api(self):
        api = getattr(self._local, "api", None)
        if api is None:
            api = self._local.api = self._factory()
        return api

    def _run(self, cid: str, argv: tuple[str, ...], job: _Job) -> tuple[int, str]:
        api = self._api()
        job.exec_id = api.exec_create(cid, list(argv), stdout=True, stderr=True)["Id"]
        stream = api.exec_start(job.exec_id, stream=True)
        if job.cancelled:          # timed out before it even started
            self._kill(job)
        out = bytearray()
        for chunk in stream:
            if len(out) < MAX_OUTPUT:
                out += chunk[:MAX_OUTPUT - len(out)]
        code = api.exec_inspect(job.exec_id).get("ExitCode")
        return (code if isinstance(code, int) else -1), out.decode("utf-8", "replace")

    def _kill(self, job: _Job) -> None:
        job.cancelled = True
        if job.exec_id is None:
            return
        try:
            info = self._api().exec_inspect(job.exec_id)
        except Exception as exc:  # noqa: BLE001 - the daemon may be going away
            log.warning("timed-out exec %s: inspect failed: %s", job.exec_id[:12], exc)
            return
        if info.get("Running") and info.get("Pid"):
            kill_tree(int(info["Pid"]))

    async def run(self, cid: str, argv: tuple[str, ...], timeout: float) -> tuple[int, str]:
        loop = asyncio.get_running_loop()
        job = _Job()
        self._jobs.add(job)
        fut = loop.run_in_executor(self._pool, self._run, cid, argv, job)
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            await loop.run_in_executor(None, self._kill, job)
            return EXIT_TIMEOUT, timeout_output(timeout)
        except Exception as exc:  # noqa: BLE001 - API errors are a failed check, not a crash
            msg = getattr(exc, "explanation", None) or str(exc)
            return EXIT_TIMEOUT, f"exec failed: {msg}"[:MAX_OUTPUT]
        finally:
            self._jobs.discard(job)

    def kill_running(self) -> None:
        """On shutdown: no check process is left behind in any container."""
        for job in list(self._jobs):
            self._kill(job)

    async def shutdown(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.kill_running)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class AsyncExec:
    """The exec API spoken directly over dockerd's unix socket from the asyncio loop.

    Same three calls as the SDK (create, start attached, inspect), without a thread per
    check or the SDK's per-request overhead: the benchmark measured ~8 ms of sidecar CPU per
    exec check through the SDK. Used when the docker host is a unix socket (the sidecar has
    to run on the containers' host anyway); ExecRunner covers the other schemes.
    """

    def __init__(self, socket_path: str, version: str = "v1.41") -> None:
        self.path = socket_path
        self.prefix = f"/{version}"
        self._inflight: set[str] = set()

    async def _request(self, method: str, url: str, body: dict | None = None,
                       upgrade: bool = False):
        reader, writer = await asyncio.open_unix_connection(self.path)
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {self.prefix}{url} HTTP/1.1", "Host: docker",
                "User-Agent: dockguard-healthd"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += (["Connection: Upgrade", "Upgrade: tcp"] if upgrade else ["Connection: close"])
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        status_line = await reader.readline()
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[1].isdigit():
            writer.close()
            raise OSError(f"bad response from dockerd: {status_line[:80]!r}")
        headers = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        return int(parts[1]), headers, reader, writer

    async def _json(self, method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
        status, headers, reader, writer = await self._request(method, url, body)
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raw = b""
                while True:
                    size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    raw += await reader.readexactly(size)
                    await reader.readline()
            elif "content-length" in headers:
                raw = await reader.readexactly(int(headers["content-length"]))
            else:
                raw = await reader.read()
        finally:
            writer.close()
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            doc = {"message": raw[:200].decode("utf-8", "replace")}
        return status, doc if isinstance(doc, dict) else {}

    async def run(self, cid: str, argv: tuple[str, ...], timeout: float) -> tuple[int, str]:
        try:
            async with asyncio.timeout(API_TIMEOUT):
                status, doc = await self._json("POST", f"/containers/{cid}/exec", {
                    "AttachStdout": True, "AttachStderr": True, "Cmd": list(argv)})
            if status != 201 or "Id" not in doc:
                return EXIT_TIMEOUT, f"exec failed: {doc.get('message') or status}"[:MAX_OUTPUT]
            eid = doc["Id"]
        except TimeoutError:
            return EXIT_TIMEOUT, f"exec failed: dockerd did not answer within {API_TIMEOUT:g}s"
        except (OSError, asyncio.IncompleteReadError) as exc:
            return EXIT_TIMEOUT, f"exec failed: {exc}"
        out = bytearray()
        writer = None
        self._inflight.add(eid)
        try:
            async with asyncio.timeout(timeout):
                status, _, reader, writer = await self._request(
                    "POST", f"/exec/{eid}/start", {"Detach": False, "Tty": False}, upgrade=True)
                if status not in (101, 200):
                    return EXIT_TIMEOUT, f"exec start failed: HTTP {status}"
                while True:     # stdout/stderr frames: 8-byte header, then the payload
                    try:
                        hdr = await reader.readexactly(8)
                    except asyncio.IncompleteReadError:
                        break
                    chunk = await reader.readexactly(int.from_bytes(hdr[4:8], "big"))
                    if len(out) < MAX_OUTPUT:
                        out += chunk[:MAX_OUTPUT - len(out)]
        except TimeoutError:
            await self._kill(eid)
            return EXIT_TIMEOUT, timeout_output(timeout)
        except (OSError, asyncio.IncompleteReadError) as exc:
            return EXIT_TIMEOUT, f"exec failed: {exc}"
        finally:
            self._inflight.discard(eid)
            if writer is not None:
                writer.close()
        try:
            async with asyncio.timeout(API_TIMEOUT):
                status, info = await self._json("GET", f"/exec/{eid}/json")
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            return EXIT_TIMEOUT, f"exec inspect failed: {exc or 'dockerd did not answer'}"
        code = info.get("ExitCode")
        return (code if isinstance(code, int) else EXIT_TIMEOUT), out.decode("utf-8", "replace")

    async def _kill(self, eid: str) -> None:
        """Timed out: kill the exec'd process tree (host pids; the sidecar runs as root)."""
        try:
            async with asyncio.timeout(API_TIMEOUT):
                _, info = await self._json("GET", f"/exec/{eid}/json")
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            log.warning("timed-out exec %s: inspect failed: %s", eid[:12], exc)
            return
        if info.get("Running") and info.get("Pid"):
            kill_tree(int(info["Pid"]))

    async def shutdown(self) -> None:
        """On shutdown: no check process is left behind in any container."""
        await asyncio.gather(*(self._kill(e) for e in list(self._inflight)),
                             return_exceptions=True)

    def close(self) -> None:
        pass
