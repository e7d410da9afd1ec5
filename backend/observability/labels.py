"""Label values with bounded cardinality.

Prometheus keeps one series per label combination, so a label fed by user data (agent
names, action type names) must not grow without bound: 1,000 agents must not become
1,000 series per metric. :class:`Bounded` admits the first ``limit`` distinct values it
sees and answers :data:`OTHER` for every value after that, so the series count is capped
whatever the traffic, and the busiest agents, which show up first, keep their own series.
"""

import threading

OTHER = "other"


class Bounded:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str | None) -> str:
        if not value:
            return OTHER
        if value in self._seen:  # a set read needs no lock
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value

    def admitted(self) -> int:
        return len(self._seen)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
