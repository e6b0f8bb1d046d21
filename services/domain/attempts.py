"""Sign-in attempt limits: at most ``limit`` failed attempts per key in a sliding window.

Pure (the caller passes the time), kept in memory by the one API process that owns it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class AttemptLimiter:
    """Failed sign-ins per key (an email, a client address) in the last ``window``."""

    limit: int
    window: timedelta = timedelta(minutes=1)
    max_keys: int = 100_000
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def wait(self, key: str, now: datetime) -> int:
        """Seconds until ``key`` may try again; 0 when it may now."""
        seen = self._recent(key, now)
        if len(seen) < self.limit:
            return 0
        return max(1, int((seen[0] + self.window - now).total_seconds() + 0.999))

    def failed(self, key: str, now: datetime) -> None:
        """Counts one failed attempt of ``key``."""
        if key not in self._failures and len(self._failures) >= self.max_keys:
            self._forget_old(now)
        self._recent(key, now).append(now)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        seen = self._failures.setdefault(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def _forget_old(self, now: datetime) -> None:
        for key in [
            k for k, seen in self._failures.items() if not seen or seen[-1] <= now - self.window
        ]:
            del self._failures[key]
        if len(self._failures) >= self.max_keys:  # all recent: forget the oldest key
            del self._failures[next(iter(self._failures))]
