"""The application's type: what a role, a router or a use case is handed.

:class:`Container` lists everything built once per process (settings, the database, the
ports and the per-process caches), typed. It lives here, in the service layer, so that
use cases can name it without climbing to the composition root:
:func:`services.bootstrap.bootstrap` is the one place that builds it (real adapters, or
a test's fakes). Collaborators one package would otherwise import sideways are passed in
as callables (:class:`DueEmails`, :class:`Recommender`), so no two packages import each
other (docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.campaigns.channels.email import EmailSender
from services.campaigns.publishers import SocialPublisher
from services.campaigns.render_pool import BoundedRenderer
from services.config import Settings
from services.db.models import Link
from services.domain.needs import Recommendation
from services.ports import Clock, EventPublisher, UnitOfWorkFactory
from services.tracking.group_commit import HandOver
from services.tracking.ingest import Ingest
from services.tracking.links import LRU, SendView
from services.tracking.tokens import TokenClaims, Tokens

if TYPE_CHECKING:
    from services.analytics.panels import StreamHealth

__all__ = ["Container", "DueEmails", "Recommender"]


class DueEmails(Protocol):
    """Sends the due emails of every campaign now (the campaign dispatcher); journeys
    call it after queueing their own sends."""

    def __call__(self, app: Container, now: datetime, sender: EmailSender | None) -> None: ...


class Recommender(Protocol):
    """The best ``limit`` resources for each person (journeys/needs.recommended_for);
    the dispatcher gives them to templates as ``recommended``."""

    def __call__(
        self, session: Session, persons: Iterable[str], limit: int = 3
    ) -> dict[str, list[Recommendation]]: ...


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
    #: Sends due emails (campaigns/dispatch); journeys/runner calls it.
    send_due_emails: DueEmails
    #: Resources recommended per person (journeys/needs); campaigns/dispatch calls it.
    recommend: Recommender
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

    def close(self) -> None:
        self.gatherer.stop()
        self.engine.dispose()
