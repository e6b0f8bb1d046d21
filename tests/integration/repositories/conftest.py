"""The backends every repository contract test runs on: the SQL adapters on SQLite and
PostgreSQL (a migrated database, as the ``database_url`` fixture makes) and the in-memory
fake (tests/fakes/unit_of_work.py), so the fake is proven faithful to SQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.db.migrate import upgrade
from services.db.models import Contact, OutboxMessage, Send, Template
from services.db.session import make_engine, make_sessionmaker
from services.db.unit_of_work import SqlUnitOfWork
from services.ids import new_id
from services.ports import UnitOfWork
from tests.conftest import a_database
from tests.fakes.unit_of_work import FakeStore, FakeUnitOfWork

TEMPLATE = "t1"  # campaigns name a template (a foreign key in SQL)


@dataclass
class Backend:
    name: str
    uow: Callable[[], UnitOfWork]
    #: Store sends of a campaign with these statuses (for its progress).
    add_sends: Callable[[str, Sequence[str]], None]
    #: What the outbox holds: (topic, records) per row, in order.
    outbox: Callable[[], list[tuple[str, list[Any]]]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "fake"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "fake":
        store = FakeStore()
        outbox = lambda: list(store.outbox)  # noqa: E731
        yield Backend("fake", partial(FakeUnitOfWork, store), partial(_fake_sends, store), outbox)
        return
    with a_database(request.param, request, tmp_path) as url:
        yield from _sql_backend(url)


def _sql_backend(url: str) -> Iterator[Backend]:
    upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with sessions.begin() as session:
        session.add(Template(id=TEMPLATE, name="t", channel="email", subject="s", text="x"))
    uow = partial(SqlUnitOfWork, sessions)
    yield Backend(url, uow, partial(_sql_sends, sessions), partial(_sql_outbox, sessions))
    engine.dispose()


def _fake_sends(store: FakeStore, campaign_id: str, statuses: Sequence[str]) -> None:
    store.sends += [(campaign_id, s) for s in statuses]


def _sql_sends(sessions: sessionmaker[Session], campaign_id: str, statuses: Sequence[str]) -> None:
    with sessions.begin() as session:
        for status in statuses:
            ref = new_id()
            contact = Contact(external_id=ref, pseudonym=ref)
            session.add(contact)
            session.flush()
            send = Send(id=new_id(), campaign_id=campaign_id, contact_id=contact.id, person=ref)
            session.add(send)
            send.status = status


def _sql_outbox(sessions: sessionmaker[Session]) -> list[tuple[str, list[Any]]]:
    with sessions() as session:
        rows = session.execute(select(OutboxMessage.topic, OutboxMessage.records))
        return [(topic, records) for topic, records in rows]
