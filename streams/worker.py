"""Entry point of the stream worker role (``winwin worker``)."""

from __future__ import annotations

import faust

from services.bus.producer import ensure_topics
from services.config import Settings
from services.db.session import make_engine, make_sessionmaker
from streams.agents import install
from streams.app import create_app
from streams.writer import SinkProcess


def build(settings: Settings, app_id: str = "winwin-attribution") -> faust.App:
    app_id = f"{settings.topic_prefix}{app_id}"
    partitions = ensure_topics(settings)
    sessions = make_sessionmaker(make_engine(settings.database_url))  # heartbeats
    sink = SinkProcess(settings.database_url, settings.attribution_window_days, settings.timezone)
    app = create_app(settings, app_id)
    install(app, sink, sessions, partitions, settings.topic_prefix)
    return app


def run(settings: Settings, loglevel: str = "WARNING") -> None:
    """Run the worker until SIGTERM/SIGINT (Faust drains, commits and closes)."""
    app = build(settings)
    # override_logging=False keeps the handlers of services.logs (WINWIN_LOG_FORMAT=json).
    faust.Worker(
        app, loglevel=loglevel, quiet=True, override_logging=False
    ).execute_from_commandline()
