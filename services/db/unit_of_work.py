"""The SQL unit of work (:class:`services.ports.UnitOfWork`): one session, one
transaction, the repositories of :mod:`services.db.repositories` over it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self, cast

from sqlalchemy.orm import Session, sessionmaker

from services.db.repositories import (
    SqlCampaigns,
    SqlContacts,
    SqlEventLedger,
    SqlLinks,
    SqlResources,
    SqlTemplates,
)


class SqlUnitOfWork:
    """``with SqlUnitOfWork(sessions) as uow: ...; uow.commit()``; leaving the block
    without a commit discards the changes. Rows read stay readable after the block
    (the session closes without expiring them)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def __enter__(self) -> Self:
        self.session = self.sessions()
        self.campaigns = SqlCampaigns(self.session)
        self.contacts = SqlContacts(self.session)
        self.links = SqlLinks(self.session)
        self.events = SqlEventLedger(self.session)
        self.templates = SqlTemplates(self.session)
        self.resources = SqlResources(self.session)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.session.close()  # an uncommitted transaction is rolled back

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


def in_session(store: Callable[[Session, str], None]) -> Callable[[object, str], None]:
    """A unit-of-work step from a function of the SQL session (what a use case stores
    with a new campaign and has no repository of its own yet: a holdout, an audience)."""

    def step(uow: object, campaign_id: str) -> None:  # the SqlUnitOfWork of the use case
        store(cast(SqlUnitOfWork, uow).session, campaign_id)

    return step
