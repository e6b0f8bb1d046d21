"""Read answers kept until the data they count changes (issue 19: reads that stay fast).

An exact count of unique people over a million events is a walk over every credit row of
the window (``COUNT(DISTINCT person)`` per campaign and stage: about a second on
PostgreSQL and several on SQLite at 1M events), and counts of people do not add up
across periods, so they cannot be summed from smaller roll-ups. But the data changes
only when a writer bumps the stored data's generation (:mod:`services.analytics.windows`:
the stream's sink when it stores stage events or drops credits, a stage-map change, an
identity recount, a window recomputed from scratch), and between two bumps every answer
stays the same. So each answer is kept, per database, under the generation read *before*
it was computed: the next read with the same parameters is one primary-key lookup and a
copy. A writer committing while an answer is computed bumps the generation past the one
kept, so a stale answer is never served, at worst computed twice. A window dropped to
make room for another (``WINWIN_MAX_EXTRA_WINDOWS``) loses its ``credit_windows`` row,
so its tag says incomplete until it is computed again, to the same credits.

The answers live in the process (an LRU of at most :data:`SIZE` answers and
:data:`BUDGET` bytes of JSON per engine; an answer over :data:`LARGEST` is not kept), not
in SQL: a read never writes, and each API process keeps its own.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.analytics import windows

__all__ = ["BUDGET", "LARGEST", "SIZE", "kept"]

T = TypeVar("T")
SIZE = 256  # answers kept per database: every dashboard view of a busy day, and then some
BUDGET = 4 * 2**20  # bytes of JSON kept per database, at most (~5× that in memory)
LARGEST = 256 * 2**10  # a larger answer (years of days, say) is computed each time


class _Kept:
    """One database's answers: parameters → (generation tag, answer)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: OrderedDict[Hashable, tuple[Hashable, Any, int]] = OrderedDict()
        self.size = 0  # bytes of JSON held

    def get(self, key: Hashable, tag: Hashable) -> tuple[bool, Any]:
        with self.lock:
            found = self.answers.get(key)
            if found is None or found[0] != tag:
                return False, None
            self.answers.move_to_end(key)
            return True, found[1]

    def put(self, key: Hashable, tag: Hashable, answer: Any) -> None:
        size = len(json.dumps(answer, default=str))
        if size > LARGEST:
            return
        with self.lock:
            if key in self.answers:
                self.size -= self.answers.pop(key)[2]
            self.answers[key] = (tag, answer, size)
            self.size += size
            while len(self.answers) > SIZE or self.size > BUDGET:
                self.size -= self.answers.popitem(last=False)[1][2]


_by_engine: WeakKeyDictionary[Engine, _Kept] = WeakKeyDictionary()
_guard = threading.Lock()


def kept(session: Session, key: Hashable, window_days: int, compute: Callable[[], T]) -> T:
    """``compute()``'s answer, or the one kept for ``key`` if the data has not changed
    since (for the attribution window ``window_days``: whether it is complete is part
    of the tag). Callers get their own copy either way."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _guard:
        answers = _by_engine.setdefault(engine, _Kept())
    tag = windows.generation(session, window_days)  # before the answer: never newer than it
    hit, found = answers.get(key, tag)
    if hit:
        answer: T = found
        return copy.deepcopy(answer)
    answer = compute()
    # Kept only if nothing changed meanwhile: a window dropped and computed again while
    # this answer was computed would otherwise match its tag with a partial answer.
    if windows.generation(session, window_days) == tag:
        answers.put(key, tag, answer)
    return copy.deepcopy(answer)
