"""gunicorn on a unix socket, serving the plugin app.

Worker model: one gevent worker by default. The lookups some rules make go back to dockerd,
which asks this plugin about them before answering: a nested request that must be served
while the outer one waits. With sync or thread-pool workers, enough concurrent lookups
occupy every worker and the nested requests queue behind them: a deadlock. A gevent
worker waits on sockets, not on workers: every waiting lookup is a parked greenlet, the
worker keeps accepting (up to `worker_connections`, set far above the in-flight limit),
and the nested request is always served. One process also keeps the in-flight table
exact. bench/bench_authz.py measures the worker models side by side.

Under systemd (dockguard-authz.socket + .service, Type=notify, NotifyAccess=all):
- the listening socket comes from systemd (LISTEN_FDS; gunicorn takes the fd and never
  unlinks it), so connections made while the plugin restarts queue instead of failing;
- readiness is sent by the worker once the app is loaded (gunicorn's own READY=1 comes from
  the master before any worker can answer, so the master's NOTIFY_SOCKET is withheld);
- SIGHUP to the master is forwarded to the workers, which reload the policy in place (the
  app holds it; gunicorn's own HUP would start new workers from the master's old copy).
"""
from __future__ import annotations

import os
import signal
import socket

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

WORKER_CONNECTIONS = 10000


class PluginServer(BaseApplication):
    def __init__(self, socket_path: str, app_factory, *, worker_class: str = "gevent",
                 workers: int = 1, threads: int = 8, log_level: str = "warning",
                 on_hup=None, worker_tmp_dir: str | None = None):
        self.socket_path = socket_path
        self.app_factory = app_factory
        self.on_hup = on_hup
        # Taken from the environment before the master can announce itself (see above).
        self.notify_socket = os.environ.pop("NOTIFY_SOCKET", None)
        self.options = {
            "workers": workers,
            # gevent: gunicorn's gevent worker with the lean loop for AuthZReq/AuthZRes
            "worker_class": "authz.worker.PluginWorker" if worker_class == "gevent" else worker_class,
            "worker_connections": WORKER_CONNECTIONS,
            "threads": threads,
            "timeout": 60,
            "graceful_timeout": 5,
            "keepalive": 75,
            "umask": 0o077,
            "loglevel": log_level,
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "dockguard-authz",
            "post_worker_init": self._worker_ready,
        }
        if socket_path and not systemd_socket():
            self.options["bind"] = f"unix:{socket_path}"
        if worker_tmp_dir:  # the heartbeat file; /tmp is read-only under the unit's hardening
            self.options["worker_tmp_dir"] = worker_tmp_dir
        super().__init__()

    def load_config(self):
        for k, v in self.options.items():
            self.cfg.set(k, v)

    def load(self):
        return self.app_factory()

    def run(self):
        _Arbiter(self).run()

    def _worker_ready(self, worker) -> None:
        """In the worker, app loaded: SIGHUP reloads the policy; tell systemd we serve."""
        live = getattr(worker.wsgi, "extensions", {}).get("dockguard")
        notify = self.notify_socket

        def reload():
            sd_notify(notify, "RELOADING=1")
            if live is not None:
                live.reload()
            sd_notify(notify, "READY=1\nSTATUS=serving")

        if worker.cfg.worker_class_str in ("gevent", "authz.worker.PluginWorker"):
            import gevent
            gevent.signal_handler(signal.SIGHUP, reload)
        else:
            signal.signal(signal.SIGHUP, lambda *_: reload())
        sd_notify(notify, "READY=1\nSTATUS=serving")


class _Arbiter(Arbiter):
    def handle_hup(self):
        """Reload the policy where it lives (the workers), keep workers and connections."""
        self.log.info("Hang up: reloading the policy")
        if self.app.on_hup is not None:
            self.app.on_hup()
        self.kill_workers(signal.SIGHUP)


def sd_notify(address: str | None, state: str) -> bool:
    """One datagram to systemd's notify socket (sd_notify(3)); False when not under systemd."""
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode())
        return True
    except OSError:
        return False


def systemd_socket() -> bool:
    """True when systemd (or systemd-socket-activate) passed us a listening socket."""
    return os.environ.get("LISTEN_PID") == str(os.getpid()) and int(os.environ.get("LISTEN_FDS") or 0) > 0


def serve(socket_path: str | None, app_factory, **kw) -> None:
    if socket_path and not systemd_socket():
        os.makedirs(os.path.dirname(os.path.abspath(socket_path)), exist_ok=True)
    PluginServer(socket_path or "", app_factory, **kw).run()
