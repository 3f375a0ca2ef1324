"""Lifecycle operations in flight, counted between AuthZReq and AuthZRes.

dockerd sends no request id, but it sends AuthZRes with the same method and URI as the
AuthZReq it answers, so a request is keyed by (method, URI). A response that never comes
(another plugin denied, the client went away, the daemon died) must not leak a count: each
entry carries its start time and stops counting after `ttl` seconds.
"""
from __future__ import annotations

import time
from collections import deque

from .rules import stage

LIMIT = stage("inflight-limit",
              reason="docker drops messages past about 1000 concurrent commands, and containers then "
                     "fail to start",
              hint="run fewer lifecycle commands at once (batch them; the limit is in the policy)")


class InFlight:
    def __init__(self, ttl: float, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._by_key: dict[tuple[str, str], deque[float]] = {}
        self._order: deque[tuple[float, tuple[str, str]]] = deque()
        self._count = 0

    def _expire(self, now: float) -> None:
        cutoff = now - self.ttl
        order = self._order
        while order and order[0][0] <= cutoff:
            t, key = order.popleft()
            starts = self._by_key.get(key)
            if starts and starts[0] == t:
                starts.popleft()
                self._count -= 1
                if not starts:
                    del self._by_key[key]

    def count(self) -> int:
        self._expire(self.clock())
        return self._count

    def try_start(self, key: tuple[str, str], limit: int) -> bool:
        """Count one more, unless `limit` are already in flight."""
        now = self.clock()
        self._expire(now)
        if self._count >= limit:
            return False
        self._by_key.setdefault(key, deque()).append(now)
        self._order.append((now, key))
        self._count += 1
        return True

    def finish(self, key: tuple[str, str]) -> None:
        """The response for the oldest request with this key came back."""
        starts = self._by_key.get(key)
        if not starts:
            return  # already expired, or never counted
        starts.popleft()
        self._count -= 1
        if not starts:
            del self._by_key[key]
        # its entry in _order is skipped when it reaches the front (start time no longer matches)
