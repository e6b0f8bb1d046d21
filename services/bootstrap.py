"""The composition root: one place that wires real (or, in tests, fake) adapters into
the typed application every role and router uses (its type: services/application.py's
:class:`Container`). It also passes in what one package of the service layer needs from
another, so none imports the other sideways. Nothing connects at import.

Routers get the application through the :data:`AppDep` dependency; the click hot path
(``/r``, ``/o``, answered before FastAPI's routing) reads ``request.app.state.container``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import Depends, Request

from services.application import Container
from services.campaigns.channels.email import EmailSender
from services.campaigns.dispatch import Dispatcher, make_sender
from services.campaigns.publishers import SocialPublisher
from services.campaigns.render_pool import BoundedRenderer
from services.config import Settings, get_settings
from services.db.session import make_engine, make_sessionmaker
from services.db.unit_of_work import SqlUnitOfWork
from services.journeys.needs import recommended_for
from services.ports import Clock, EventPublisher, UnitOfWorkFactory
from services.tracking.group_commit import Gatherer, HandOver
from services.tracking.ingest import Ingest
from services.tracking.spool import ClickSpool
from services.tracking.tokens import Tokens

__all__ = ["AppDep", "Container", "bootstrap", "get_container", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def send_due_emails(app: Container, now: datetime, sender: EmailSender | None) -> None:
    """The campaign dispatcher's round, for journeys that queued sends of their own."""
    Dispatcher(app, sender or make_sender(app)).dispatch_due(now)


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
    spool = ClickSpool(settings.state_dir, settings.database_url)
    gatherer = event_publisher or Gatherer(ingest, spool=spool)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        tokens=Tokens(secret),
        ingest=ingest,
        gatherer=gatherer,
        renderer=BoundedRenderer.from_settings(settings),
        now=clock,
        click_hand_over=HandOver(gatherer, settings.click_commit_wait_seconds, spool),
        send_due_emails=send_due_emails,
        recommend=recommended_for,
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
