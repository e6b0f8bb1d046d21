"""The long-running roles (api, worker, dispatcher, relay), each run in its own process;
services/supervisor.py runs them together (``winwin up`` / ``winwin demo``)."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

from services.config import Settings
from services.processes import GRACE, Heartbeat, exit_within  # GRACE: services.roles.GRACE too

if TYPE_CHECKING:
    pass

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
    heartbeat = Heartbeat(settings.state_dir, "relay")
    try:
        relay.run(beat=heartbeat.beat)
    finally:
        heartbeat.remove()


def run_dispatcher(settings: Settings, poll: float = 1.0) -> None:
    # lazy: only the dispatcher's process loads the use cases (and Jinja2, SendGrid)
    from services.dispatcher_role import run

    run(settings, poll, _stop_on_signals)


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
