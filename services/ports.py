"""Ports: what the service layer needs from the world, named in one place as Protocols.

Adapters implement them; :func:`services.bootstrap.bootstrap` picks real ones, a test
passes fakes. The email and social ports live next to the messages they carry:
:class:`~services.campaigns.channels.email.EmailSender` (SendGrid or the local outbox) and
:class:`~services.campaigns.publishers.SocialPublisher` (feed, webhook). The repositories
and the unit of work (SQL: ``services/db/repositories.py``, ``services/db/unit_of_work.py``;
in memory for tests: ``tests/fakes/unit_of_work.py``) hand out the mapped rows of
``services/db/models.py``, named here for the type checker only: at run time this module
imports nothing of the product, so every layer may name its ports.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from services.db.models import Campaign, Contact, Link, Resource, Template
    from services.domain.consent import Consent
    from services.domain.lifecycle import CampaignStatus

__all__ = [
    "CampaignRepository",
    "Clock",
    "ContactRepository",
    "EventLedger",
    "EventPublisher",
    "EventSink",
    "LinkRepository",
    "ResourceRepository",
    "TemplateRepository",
    "UnitOfWork",
    "UnitOfWorkFactory",
]


class Clock(Protocol):
    """Port: the current time, timezone-aware (tests pass a clock they move by hand)."""

    def __call__(self) -> datetime: ...


class EventSink(Protocol):
    """Port: takes one engagement record without waiting (a click, an open)."""

    def add(self, record: dict[str, Any]) -> None: ...


class EventPublisher(EventSink, Protocol):
    """Port: engagement records from the hot endpoints (clicks, opens, page views),
    handed over without waiting and spooled in batches into the SQL outbox, from where
    the relay publishes them to Kafka (tracking/group_commit.py: :class:`Gatherer`). A redirect
    waits for its click's batch through a ``later`` task (tracking/group_commit.py: ``Receipt``)."""

    def start(self) -> None: ...

    def later(self, task: Callable[[], None]) -> None:
        """Run ``task`` on the publisher's own thread, after the records added before it."""

    def stop(self) -> None:
        """Stop, after spooling what was handed over."""


# --- repositories ------------------------------------------------------------------------


class CampaignRepository(Protocol):
    """Port: the campaigns (aggregate: a campaign and its status)."""

    def get(self, campaign_id: str) -> Campaign | None: ...

    def add(self, campaign: Campaign) -> None: ...

    def with_status(self, status: CampaignStatus) -> list[Campaign]:
        """The campaigns in ``status``, oldest first (then by id)."""

    def known(self, campaign_ids: Collection[str]) -> set[str]:
        """Those of ``campaign_ids`` that name a stored campaign."""

    def progress(self, campaign_id: str) -> dict[str, int]:
        """``{"total", "sent", "suppressed", "failed"}`` of the campaign's sends."""


class ContactRepository(Protocol):
    """Port: the contacts, found by the network's own (external) id."""

    def get_by_external_id(self, external_id: str) -> Contact | None: ...

    def add(self, contact: Contact) -> None: ...

    def set_consent(self, contact: Contact, consent: Consent, source: str) -> bool:
        """Set the contact's email consent, recording the change in its history (by
        ``source``); False (nothing recorded) when it already was ``consent``."""

    def consent_history(self, contact: Contact) -> list[tuple[str, str]]:
        """The contact's email consent changes, oldest first: (status, source)."""


class LinkRepository(Protocol):
    """Port: tracked links; a redirect goes only to a destination stored here."""

    def add(self, link: Link) -> None: ...

    def by_token(self, token: str) -> Link | None:
        """The link a verified token names (its reference), else None."""


class TemplateRepository(Protocol):
    """Port: the message templates campaigns render."""

    def get(self, template_id: str) -> Template | None: ...

    def add(self, template: Template) -> None: ...


class ResourceRepository(Protocol):
    """Port: the library of resources campaigns offer."""

    def add(self, resource: Resource) -> None: ...

    def known(self, resource_ids: Collection[str]) -> set[str]:
        """Those of ``resource_ids`` that name a stored resource."""


class EventLedger(Protocol):
    """Port: the ingest ledger (every event id ever accepted) and the outbox."""

    def add_new(self, event_ids: Sequence[str]) -> set[str]:
        """Record ``event_ids`` as accepted; those that were not already (the new ones)."""

    def enqueue(self, topic: str, records: Sequence[dict[str, Any]]) -> None:
        """Add records bound for ``topic`` to the outbox, committed with the change."""


class UnitOfWork(Protocol):
    """Port: one transaction over the repositories. Leaving the ``with`` block without
    :meth:`commit` discards the changes."""

    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def contacts(self) -> ContactRepository: ...

    @property
    def links(self) -> LinkRepository: ...

    @property
    def events(self) -> EventLedger: ...

    @property
    def templates(self) -> TemplateRepository: ...

    @property
    def resources(self) -> ResourceRepository: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    """Port: a new unit of work per use case (``uow_factory()``)."""

    def __call__(self) -> UnitOfWork: ...
