"""Journeys, needs matching and one person across channels (issue 8).

* :mod:`.stream` — ``on_batch(sessions, records)``: the stream agent's hook, starts
  durable timers (``journey_runs``) for matching events of each committed batch.
* :mod:`.runner` — ``run_due_journeys(container, now)``: acts on due timers.
* :mod:`.simulate` — the same decisions over stored events, nothing sent.
* :mod:`.needs` — ``recommended_for(session, persons)`` for templates and the API.
* :mod:`.identity` — visitor → contact merges, their undo, and ``resolve(person)``;
  published through the outbox, applied by the stream (:mod:`.recount`).

The rules themselves are pure: :mod:`services.domain.journeys`, :mod:`services.domain.needs`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from services.journeys.identity import reconcile
from services.journeys.runner import run_due_journeys

if TYPE_CHECKING:
    from services.application import Container

__all__ = ["tick"]


def tick(container: Container, now: datetime | None = None) -> dict[str, int]:
    """One round of the periodic work (for the dispatcher role's loop): publish again
    the merges of visitors whose events arrived late (the stream moves them), then act
    on due journey timers."""
    moved = reconcile(container)
    return run_due_journeys(container, now) | {"identity_rows_moved": moved}
