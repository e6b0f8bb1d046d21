"""One place that wires real (or, in tests, fake) adapters. Nothing connects at import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.campaigns.render_pool import BoundedRenderer
from services.config import Settings, get_settings
from services.db.session import make_engine, make_sessionmaker
from services.tracking.ingest import Gatherer, Ingest
from services.tracking.tokens import Tokens


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    """Everything a role needs, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: Tokens
    ingest: Ingest
    gatherer: Gatherer
    renderer: BoundedRenderer
    now: Callable[[], datetime]
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.gatherer.stop()
        self.engine.dispose()


def bootstrap(settings: Settings | None = None, now: Callable[[], datetime] = utcnow) -> Container:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    secret = settings.secret_key.get_secret_value().encode()
    ingest = Ingest(sessions, secret, now)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        tokens=Tokens(secret),
        ingest=ingest,
        gatherer=Gatherer(ingest),
        renderer=BoundedRenderer.from_settings(settings),
        now=now,
    )
