"""In-memory adapters of the repository ports and the unit of work (services/ports.py),
for tests of the service layer: no database, no thread.

Faithful to the SQL adapters where the service layer can tell (the contract suite in
tests/integration/repositories/ runs both): a unit of work works on copies of the
stored rows, so changes left uncommitted are gone; rows read stay readable after it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import inspect

from services.db.models import Campaign, Contact, Link, Resource, Template
from services.domain.consent import Consent
from services.domain.lifecycle import CampaignStatus, SendStatus

Row = TypeVar("Row", Campaign, Contact, Link, Template, Resource)


@dataclass
class FakeStore:
    """What a fake database holds: rows by key, the ledger, the outbox, the sends."""

    campaigns: dict[str, Campaign] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)
    links: dict[str, Link] = field(default_factory=dict)
    templates: dict[str, Template] = field(default_factory=dict)
    resources: dict[str, Resource] = field(default_factory=dict)
    consent_changes: list[tuple[int, str, str]] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    outbox: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    #: (campaign id, send status) of each send, for a campaign's progress.
    sends: list[tuple[str, str]] = field(default_factory=list)
    commits: int = 0

    def copy(self) -> FakeStore:
        return FakeStore(
            campaigns={k: _clone(v) for k, v in self.campaigns.items()},
            contacts={k: _clone(v) for k, v in self.contacts.items()},
            links={k: _clone(v) for k, v in self.links.items()},
            templates={k: _clone(v) for k, v in self.templates.items()},
            resources={k: _clone(v) for k, v in self.resources.items()},
            consent_changes=list(self.consent_changes),
            accepted=set(self.accepted),
            outbox=list(self.outbox),
            sends=list(self.sends),
            commits=self.commits,
        )


def _clone(row: Row) -> Row:
    """A detached copy of a mapped row: its column attributes only."""
    attrs = inspect(type(row)).column_attrs
    return type(row)(**{a.key: getattr(row, a.key) for a in attrs})


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)  # SQLite's CURRENT_TIMESTAMP


class FakeCampaigns:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, campaign_id: str) -> Campaign | None:
        return self.store.campaigns.get(campaign_id)

    def add(self, campaign: Campaign) -> None:
        campaign.status = campaign.status or CampaignStatus.DRAFT
        campaign.created_at = campaign.created_at or _now()
        self.store.campaigns[campaign.id] = campaign

    def with_status(self, status: CampaignStatus) -> list[Campaign]:
        found = [c for c in self.store.campaigns.values() if c.status == status]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def known(self, campaign_ids: Collection[str]) -> set[str]:
        return {i for i in campaign_ids if i in self.store.campaigns}

    def progress(self, campaign_id: str) -> dict[str, int]:
        statuses = [s for c, s in self.store.sends if c == campaign_id]
        counted = (SendStatus.SENT, SendStatus.SUPPRESSED, SendStatus.FAILED)
        return {"total": len(statuses)} | {str(s): statuses.count(s) for s in counted}


class FakeContacts:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get_by_external_id(self, external_id: str) -> Contact | None:
        found = [c for c in self.store.contacts.values() if c.external_id == external_id]
        return found[0] if found else None

    def add(self, contact: Contact) -> None:
        contact.id = contact.id or max(self.store.contacts, default=0) + 1
        contact.email_consent = contact.email_consent or Consent.UNCONFIRMED
        self.store.contacts[contact.id] = contact

    def set_consent(self, contact: Contact, consent: Consent, source: str) -> bool:
        if contact.email_consent == consent:
            return False
        contact.email_consent = consent
        self.store.consent_changes.append((contact.id, str(consent), source))
        return True

    def consent_history(self, contact: Contact) -> list[tuple[str, str]]:
        return [(s, src) for i, s, src in self.store.consent_changes if i == contact.id]


class FakeLinks:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def add(self, link: Link) -> None:
        self.store.links[link.id] = link

    def by_token(self, token: str) -> Link | None:
        found = [k for k in self.store.links.values() if k.token == token]
        return found[0] if found else None


class FakeTemplates:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def get(self, template_id: str) -> Template | None:
        return self.store.templates.get(template_id)

    def add(self, template: Template) -> None:
        template.created_at = template.created_at or _now()
        self.store.templates[template.id] = template


class FakeResources:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def add(self, resource: Resource) -> None:
        resource.topics = resource.topics if resource.topics is not None else []
        resource.created_at = resource.created_at or _now()
        self.store.resources[resource.id] = resource

    def known(self, resource_ids: Collection[str]) -> set[str]:
        return {i for i in resource_ids if i in self.store.resources}


class FakeEventLedger:
    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def add_new(self, event_ids: Sequence[str]) -> set[str]:
        new = set(event_ids) - self.store.accepted
        self.store.accepted |= new
        return new

    def enqueue(self, topic: str, records: Sequence[dict[str, Any]]) -> None:
        if records:
            self.store.outbox.append((topic, list(records)))


class FakeUnitOfWork:
    """A unit of work over ``store`` (shared by every unit of work of one test)."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def __enter__(self) -> Self:
        self.work = self.store.copy()
        self.campaigns = FakeCampaigns(self.work)
        self.contacts = FakeContacts(self.work)
        self.links = FakeLinks(self.work)
        self.events = FakeEventLedger(self.work)
        self.templates = FakeTemplates(self.work)
        self.resources = FakeResources(self.work)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.rollback()

    def commit(self) -> None:
        self.work.commits = self.store.commits + 1
        self.store.__dict__.update(self.work.copy().__dict__)

    def rollback(self) -> None:
        self.work = self.store.copy()
        repos = (self.campaigns, self.contacts, self.links, self.events)
        for repo in (*repos, self.templates, self.resources):
            repo.store = self.work


def fake_unit_of_work(store: FakeStore | None = None) -> tuple[FakeStore, FakeUnitOfWork]:
    """A store and a unit of work over it."""
    store = store or FakeStore()
    return store, FakeUnitOfWork(store)
