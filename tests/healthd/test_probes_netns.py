"""TCP probes through another network namespace, without Docker: a socket made while the
thread is inside a netns stays there, and the thread comes back to the host's netns."""
import errno
import os
import shutil
import socket
import subprocess
import time

import pytest

from healthd.probes import NetnsSockets, open_netns, tcp_start

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare")
                                or not shutil.which("busybox"), reason="needs root, unshare, busybox")


@pytest.fixture
def netns_listener():
    port = 7781
    p = subprocess.Popen(["unshare", "-n", "sh", "-c",
                          f"ip link set lo up; exec busybox nc -ll -p {port} -e true"])
    time.sleep(0.3)
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
