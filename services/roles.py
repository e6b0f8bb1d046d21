"""The long-running roles (api, worker, dispatcher, relay), each run in its own process;
services/supervisor.py runs them together (``winwin up`` / ``winwin demo``)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from services.config import Settings
from services.processes import GRACE, exit_within  # GRACE: services.roles.GRACE too

if TYPE_CHECKING:
    from services.bootstrap import Container

log = logging.getLogger(__name__)
ROLES = ("relay", "worker", "dispatcher", "api")


def run_api(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    # lazy: only the api role's process loads FastAPI and uvicorn
    import uvicorn

    from services.api import create_app

    uvicorn.run(
        create_app(settings=settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def run_worker(settings: Settings) -> None:
    from streams.worker import run  # lazy: only the worker's process loads Faust

    run(settings)


def run_relay(settings: Settings) -> None:
    # lazy: only the relay's process loads kafka-python and SQLAlchemy (here: the CLI's --help)
    from services.bus.relay import Relay
    from services.db.session import make_engine, make_sessionmaker

    relay = Relay(settings, make_sessionmaker(make_engine(settings.database_url)))
    _stop_on_signals(relay.stop, "relay")
    relay.run()


def due_work(container: Container) -> list[tuple[str, Callable[[datetime], object]]]:
    """Everything the dispatcher role does on each tick: email campaigns, toolkits
    (and the other channels as they land). Each step takes ``now``."""
    from functools import partial

    # lazy: only the dispatcher's process loads the use cases (and Jinja2, SendGrid)
    from services.campaigns.dispatch import Dispatcher, make_sender
    from services.campaigns.social import publish_due
    from services.campaigns.toolkits import build_due
    from services.journeys import tick
    from services.retention import Retention

    return [
        ("journeys", partial(tick, container)),
        ("email", Dispatcher(container, make_sender(container)).dispatch_due),
        ("toolkits", partial(build_due, container)),
        ("social", partial(publish_due, container)),
        ("retention", Retention(container)),  # once a day
    ]


def run_dispatcher(settings: Settings, poll: float = 1.0) -> None:
    from services.bootstrap import bootstrap  # lazy: as due_work: the dispatcher's stack

    container = bootstrap(settings)
    stop = threading.Event()
    _stop_on_signals(stop.set)
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


def _stop_on_signals(callback, deadline_for: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM and SIGINT stop the role; with ``deadline_for`` (a role waiting on Kafka)
    it ends within :data:`GRACE` seconds whatever Kafka does. The dispatcher has none:
    it waits on no broker, and finishes its sending round (the supervisor's SIGKILL
    after services.supervisor.STOP_WAIT, or systemd's, still bounds it)."""

    def stop(*_: object) -> None:
        if deadline_for:
            exit_within(GRACE, deadline_for)
        callback()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
