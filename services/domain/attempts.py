"""Sign-in attempt limits: at most ``limit`` failed attempts per key in a sliding window.

Pure (the caller passes the time), kept in memory by the one API process that owns it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass
class AttemptLimiter:
    """Failed sign-ins per key (an email, a client address) in the last ``window``.

    At most ``max_keys`` keys, on every path: ``wait`` only reads (asking about a key adds
    none), and ``failed`` keeps the keys in the order of their last failure, forgetting
    from the oldest (the expired ones, then the oldest recent ones past the cap) in O(1)
    each."""

    limit: int
    window: timedelta = timedelta(minutes=1)
    max_keys: int = 100_000
    _failures: OrderedDict[str, deque[datetime]] = field(default_factory=OrderedDict)

    def wait(self, key: str, now: datetime) -> int:
        """Seconds until ``key`` may try again; 0 when it may now."""
        seen = self._failures.get(key)
        if seen is None:
            return 0
        self._drop_expired(seen, now)
        if len(seen) < self.limit:
            return 0
        return max(1, int((seen[0] + self.window - now).total_seconds() + 0.999))

    def failed(self, key: str, now: datetime) -> None:
        """Counts one failed attempt of ``key``."""
        seen = self._failures.pop(key, None) or deque()
        self._drop_expired(seen, now)
        seen.append(now)
        self._forget_old(now)
        self._failures[key] = seen  # the newest last failure: at the end

    def _drop_expired(self, seen: deque[datetime], now: datetime) -> None:
        while seen and seen[0] <= now - self.window:
            seen.popleft()

    def _forget_old(self, now: datetime) -> None:
        """Room for one more key: drops keys from the oldest last failure while they are
        expired or the cap is reached (the first key is the oldest: when it is recent,
        all are)."""
        while self._failures:
            _, oldest = next(iter(self._failures.items()))
            if len(self._failures) < self.max_keys and oldest and oldest[-1] > now - self.window:
                return
            self._failures.popitem(last=False)
