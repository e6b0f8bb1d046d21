"""The dispatcher role: every step it takes on each tick (email campaigns, journeys,
toolkits, social posts, retention), run until SIGTERM or SIGINT.

Its own module so that only the dispatcher's process loads the use cases (and Jinja2,
SendGrid): ``services.roles.run_dispatcher`` imports it when the role starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from functools import partial

from services.application import Container
from services.bootstrap import bootstrap
from services.campaigns.dispatch import Dispatcher, make_sender
from services.campaigns.social import publish_due
from services.campaigns.toolkits import build_due
from services.config import Settings
from services.journeys import tick
from services.retention import Retention

log = logging.getLogger("services.roles")


def due_work(container: Container) -> list[tuple[str, Callable[[datetime], object]]]:
    """Everything the dispatcher role does on each tick. Each step takes ``now``."""
    return [
        ("journeys", partial(tick, container)),
        ("email", Dispatcher(container, make_sender(container)).dispatch_due),
        ("toolkits", partial(build_due, container)),
        ("social", partial(publish_due, container)),
        ("retention", Retention(container)),  # once a day
    ]


def run(
    settings: Settings, poll: float, stop_on_signals: Callable[[Callable[[], None]], None]
) -> None:
    container = bootstrap(settings)
    stop = threading.Event()
    stop_on_signals(stop.set)
    steps = due_work(container)
    while not stop.is_set():
        for name, step in steps:
            if stop.is_set():
                break
            try:
                step(container.now())
            except Exception:  # noqa: BLE001 - the role keeps running; the next tick retries
                log.exception("%s: dispatch step failed; retrying", name)
        stop.wait(poll)
