"""gunicorn on a unix socket, serving the plugin app.

Worker model: one gevent worker by default. The lookups some rules make go back to dockerd,
which asks this plugin about them before answering: a nested request that must be served
while the outer one waits. With sync or thread-pool workers, enough concurrent lookups
occupy every worker and the nested requests queue behind them: a deadlock. A gevent
worker waits on sockets, not on workers: every waiting lookup is a parked greenlet, the
worker keeps accepting (up to `worker_connections`, set far above the in-flight limit),
and the nested request is always served. One process also keeps the in-flight table
exact. bench/bench_authz.py measures the worker models side by side.
"""
from __future__ import annotations

import os

from gunicorn.app.base import BaseApplication

WORKER_CONNECTIONS = 10000


class PluginServer(BaseApplication):
    def __init__(self, socket_path: str, app_factory, *, worker_class: str = "gevent",
                 workers: int = 1, threads: int = 8, log_level: str = "warning"):
        self.socket_path = socket_path
        self.app_factory = app_factory
        self.options = {
            "bind": f"unix:{socket_path}",
            "workers": workers,
            "worker_class": worker_class,
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
        }
        super().__init__()

    def load_config(self):
        for k, v in self.options.items():
            self.cfg.set(k, v)

    def load(self):
        return self.app_factory()


def serve(socket_path: str, app_factory, **kw) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(socket_path)), exist_ok=True)
    PluginServer(socket_path, app_factory, **kw).run()
