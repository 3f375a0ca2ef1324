"""Due times for every watched container in one heap: no thread or timer per container.

At most one live entry per key: `schedule` replaces any previous due time of that key, so a
replayed event or a reconnect can never leave two schedules for one container. Replaced and
cancelled entries stay in the heap and are skipped when they surface (lazy deletion), which
keeps every operation O(log n). Time is passed in, never read, so tests need no clock.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Hashable


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Hashable]] = []
        self._live: dict[Hashable, int] = {}     # key -> sequence number of its live entry
        self._seq = itertools.count()

    def schedule(self, key: Hashable, due: float) -> None:
        seq = next(self._seq)
        self._live[key] = seq
        heapq.heappush(self._heap, (due, seq, key))
        if len(self._heap) > 64 and len(self._heap) > 4 * len(self._live):
            self._compact()

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._live

    def __len__(self) -> int:
        return len(self._live)


    def next_due(self) -> float | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[tuple[Hashable, float]]:
        """Remove and return (key, due) of every live entry due at or before `now`, earliest first."""
        out = []
        while True:
            self._drop_stale()
            if not self._heap or self._heap[0][0] > now:
                return out
            due, seq, key = heapq.heappop(self._heap)
            del self._live[key]
            out.append((key, due))

    def _drop_stale(self) -> None:
        heap, live = self._heap, self._live
        while heap and live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)

    def _compact(self) -> None:
        self._heap = [e for e in self._heap if self._live.get(e[2]) == e[1]]
        heapq.heapify(self._heap)
