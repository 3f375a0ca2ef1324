"""TCP probes through another network namespace, without Docker: a socket made while the
thread is inside a netns stays there, and the thread comes back to the host's netns."""
import errno
import os
import socket
import subprocess
import time

import pytest

from healthd.netns import NetnsSockets, open_netns
from healthd.probes import tcp_start
from tests.conftest import require_root_tools


@pytest.fixture
def netns_listener():
    """busybox nc listening in a netns of its own (fails under CI=true when it cannot run)."""
    require_root_tools("unshare", "busybox", "ip")
    port = 7781
    p = subprocess.Popen(["unshare", "-n", "sh", "-c",
                          f"ip link set lo up; exec busybox nc -ll -p {port} -e true"])
    # ready once it accepts inside its netns (no fixed sleep: the machine may be slow)
    sockets = NetnsSockets()
    nsfd = None
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline and p.poll() is None:
            if nsfd is None and os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net"):
                nsfd = open_netns(p.pid)
            if nsfd is not None:
                sock, err = tcp_start(sockets, nsfd, port)
                if sock is not None:
                    sock.close()
                elif err == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"listener in a private netns did not come up (exit {p.poll()})")
    finally:
        if nsfd is not None:
            os.close(nsfd)
        sockets.close()
    yield p.pid, port
    p.kill()
    p.wait()


def test_probe_reaches_the_namespace_not_the_host(netns_listener):
    pid, port = netns_listener
    home_before = os.readlink("/proc/self/ns/net")
    sockets = NetnsSockets()
    nsfd = open_netns(pid)
    try:
        sock, err = tcp_start(sockets, nsfd, port)
        assert sock is None and err == 0                      # connected inside the netns
        assert tcp_start(sockets, nsfd, port + 1) == (None, errno.ECONNREFUSED)
        # the thread is back home: the same port on the host's loopback is closed
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
        assert os.readlink(f"/proc/self/task/{__import__('threading').get_native_id()}/ns/net") \
            == home_before
    finally:
        os.close(nsfd)
        sockets.close()
