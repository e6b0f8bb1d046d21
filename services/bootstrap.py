"""The composition root: one place that wires real (or, in tests, fake) adapters into
the typed application every role and router uses. Nothing connects at import.

Routers get the application through the :data:`AppDep` dependency; the click hot path
(``/r``, ``/o``, answered before FastAPI's routing) reads ``request.app.state.container``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.campaigns.channels.email import EmailSender
from services.campaigns.publishers import SocialPublisher
from services.campaigns.render_pool import BoundedRenderer
from services.config import Settings, get_settings
from services.db.models import Link
from services.db.session import make_engine, make_sessionmaker
from services.db.unit_of_work import SqlUnitOfWork
from services.ports import Clock, EventPublisher, UnitOfWorkFactory
from services.tracking.ingest import Gatherer, HandOver, Ingest
from services.tracking.links import LRU, SendView
from services.tracking.tokens import TokenClaims, Tokens

if TYPE_CHECKING:
    from services.analytics.panels import StreamHealth


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    """The application: everything a role needs, built once per process."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    tokens: Tokens
    ingest: Ingest
    gatherer: EventPublisher
    renderer: BoundedRenderer
    now: Clock
    #: Clicks and opens of one event-loop iteration, handed to ``gatherer`` together.
    click_hand_over: HandOver
    #: A new unit of work (repositories over one transaction) per use case.
    unit_of_work: UnitOfWorkFactory
    #: Injected email sender; None: the configured one (campaigns.dispatch.make_sender).
    email_sender: EmailSender | None = None
    #: Where social posts go; None until first use: built from the settings.
    social_publishers: list[SocialPublisher] | None = None
    # Per-process caches of the hot endpoints: links and sent messages never change.
    links: LRU[Link] = field(default_factory=LRU)
    sends: LRU[SendView] = field(default_factory=LRU)
    #: Genuine tokens by (token, kind): a click on a link already seen skips the HMAC.
    verified_tokens: dict[tuple[str, str], TokenClaims] = field(default_factory=dict)
    #: Visitors whose merge into a contact is under way (journeys/identity.note_click).
    identity_pending: set[str] = field(default_factory=set)
    #: Kafka lag and dead letters for the dashboard; None until first asked.
    stream_health: StreamHealth | None = None
    #: Test-only fault injection: called with a point of tracking.webhooks.POINTS.
    faults: Callable[[str], None] | None = None

    def close(self) -> None:
        self.gatherer.stop()
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    email_sender: EmailSender | None = None,
    social_publishers: Sequence[SocialPublisher] | None = None,
    event_publisher: EventPublisher | None = None,
    now: Clock | None = None,
    unit_of_work: UnitOfWorkFactory | None = None,
) -> Container:
    """The application over ``settings`` (default: the environment's). Each port left
    None gets its real adapter; ``now`` is the older name of ``clock``."""
    settings = settings or get_settings()
    clock = clock or now or utcnow
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    secret = settings.secret_key.get_secret_value().encode()
    ingest = Ingest(sessions, secret, clock)
    gatherer = event_publisher or Gatherer(ingest)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        tokens=Tokens(secret),
        ingest=ingest,
        gatherer=gatherer,
        renderer=BoundedRenderer.from_settings(settings),
        now=clock,
        click_hand_over=HandOver(gatherer),
        unit_of_work=unit_of_work or partial(SqlUnitOfWork, sessions),
        email_sender=email_sender,
        social_publishers=list(social_publishers) if social_publishers is not None else None,
    )


async def get_container(request: Request) -> Container:
    """FastAPI dependency: the application serving ``request`` (async: no thread hop)."""
    container: Container = request.app.state.container
    return container


#: A router parameter ``c: AppDep`` receives the application.
AppDep = Annotated[Container, Depends(get_container)]
