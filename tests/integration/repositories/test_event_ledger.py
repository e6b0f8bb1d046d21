"""The contract of :class:`services.ports.EventLedger` (SQL on SQLite and PostgreSQL,
and the fake): an event id is new once, and its record is spooled with it."""

from __future__ import annotations

from tests.integration.repositories.conftest import Backend


def test_an_event_id_is_new_once_even_twice_in_one_batch(backend: Backend) -> None:
    with backend.uow() as uow:
        assert uow.events.add_new(["e1", "e2", "e1"]) == {"e1", "e2"}
        assert uow.events.add_new(["e2", "e3"]) == {"e3"}
        assert uow.events.add_new([]) == set()
        uow.commit()
    with backend.uow() as uow:
        assert uow.events.add_new(["e1", "e4"]) == {"e4"}
        # not committed: e4 stays new
    with backend.uow() as uow:
        assert uow.events.add_new(["e4"]) == {"e4"}


def test_records_go_to_the_outbox_on_commit_only(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.events.enqueue("topic.a", [{"event_id": "e1"}])
    with backend.uow() as uow:
        uow.events.enqueue("topic.a", [{"event_id": "e2"}, {"event_id": "e3"}])
        uow.events.enqueue("topic.b", [])  # nothing: no row
        uow.commit()
    assert backend.outbox() == [("topic.a", [{"event_id": "e2"}, {"event_id": "e3"}])]
