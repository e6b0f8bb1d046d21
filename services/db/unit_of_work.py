"""The SQL unit of work (:class:`services.ports.UnitOfWork`): one session, one
transaction, the repositories of :mod:`services.db.repositories` over it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

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
