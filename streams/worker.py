"""Entry point of the stream worker role (``winwin worker``)."""

from __future__ import annotations

import signal

import faust

from services.bus.producer import ensure_topics
from services.config import Settings
from services.db.session import make_engine, make_sessionmaker
from services.processes import GRACE, exit_within
from streams.agents import install
from streams.app import create_app
from streams.writer import SinkProcess


def build(settings: Settings, app_id: str = "winwin-attribution") -> faust.App:
    app_id = f"{settings.topic_prefix}{app_id}"
    partitions = ensure_topics(settings)
    sessions = make_sessionmaker(make_engine(settings.database_url))  # heartbeats
    secret = settings.secret_key.get_secret_value().encode()  # erased people's late events
    sink = SinkProcess(
        settings.database_url,
        settings.attribution_window_days,
        settings.timezone,
        secret,
        stall_seconds=settings.sink_stall_seconds,
    )
    app = create_app(settings, app_id)
    install(app, sink, sessions, partitions, settings.topic_prefix)
    return app


def run(settings: Settings, loglevel: str = "WARNING") -> None:
    """Run the worker until SIGTERM/SIGINT (Faust drains, commits and closes, within
    :data:`GRACE` seconds)."""
    app = build(settings)
    # override_logging=False keeps the handlers of services.logs (WINWIN_LOG_FORMAT=json).
    Worker(app, loglevel=loglevel, quiet=True, override_logging=False).execute_from_commandline()


class Worker(faust.Worker):
    """Faust's worker, ended :data:`GRACE` seconds after SIGTERM/SIGINT whatever Faust
    waits for: with its broker gone a worker hung in Faust's ``wait_empty`` for 12
    minutes. Offsets not committed mean re-delivery, and the sink stores nothing twice."""

    def _schedule_shutdown(self, sig: signal.Signals) -> None:
        if not self._signal_stop_time:
            exit_within(GRACE, "worker")
        super()._schedule_shutdown(sig)
