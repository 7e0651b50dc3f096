"""Failed token exchanges per client, in memory, per process.

Policy: a client (keyed by its IP as the server sees it) that fails ``max_failures`` token
exchanges within ``window`` seconds is refused (429 with ``Retry-After``) on every token endpoint
until its oldest counted failure leaves the window. Successful exchanges do not reset the count:
a guesser who also holds one valid token must not be able to launder failures.

Per process by design: several workers or replicas each keep their own count (documented).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

MAX_TRACKED_CLIENTS = 100_000


class FailureLimiter:
    def __init__(self, max_failures: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> deque[float] | None:
        q = self._failures.get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return None
        return q

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may try again; 0 when it may try now."""
        with self._lock:
            now = self._clock()
            q = self._prune(key, now)
            if q is None or len(q) < self.max_failures:
                return 0
            # The failure that must age out before the count drops below the limit.
            oldest = q[len(q) - self.max_failures]
            return max(1, math.ceil(oldest + self.window - now))

    def record_failure(self, key: str) -> None:
        with self._lock:
            now = self._clock()
            q = self._prune(key, now)
            if q is None:
                if len(self._failures) >= MAX_TRACKED_CLIENTS:
                    self._evict(now)
                q = self._failures.setdefault(key, deque())
            q.append(now)
            while len(q) > self.max_failures:  # older entries no longer matter
                q.popleft()

    def _evict(self, now: float) -> None:
        for key in list(self._failures):
            self._prune(key, now)
        if len(self._failures) >= MAX_TRACKED_CLIENTS:  # still full: forget the oldest client
            del self._failures[next(iter(self._failures))]


def get_limiter(request: Request, name: str = "auth_failure_limiter") -> FailureLimiter:
    """The app's limiter called ``name`` (token exchanges; the web UI's sign-in keeps its own),
    created on first use from the app's settings."""
    state = request.app.state
    limiter = getattr(state, name, None)
    if limiter is None:
        settings = state.settings
        limiter = FailureLimiter(settings.auth_max_failures, settings.auth_failure_window_seconds)
        setattr(state, name, limiter)
    return limiter


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"
