"""The contract of :class:`services.ports.LinkRepository` (SQL on SQLite and
PostgreSQL, and the fake): a redirect finds only a stored destination."""

from __future__ import annotations

from services.db.models import Link
from tests.integration.repositories.conftest import Backend


def test_a_stored_link_is_found_by_its_token_and_nothing_else(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.links.add(Link(id="L1", token="L1", destination="https://example.org/a", channel="web"))
        uow.links.add(Link(id="L2", token="L2", destination="https://example.org/b"))
        uow.commit()
    with backend.uow() as uow:
        link = uow.links.by_token("L1")
        assert link is not None and (link.id, link.destination) == ("L1", "https://example.org/a")
        assert link.channel == "web" and link.campaign_id is None
        assert uow.links.by_token("L3") is None
        assert uow.links.by_token("https://example.org/b") is None
    assert link.destination == "https://example.org/a"  # readable after the block


def test_a_link_added_without_commit_is_not_stored(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.links.add(Link(id="L1", token="L1", destination="https://example.org/a"))
    with backend.uow() as uow:
        assert uow.links.by_token("L1") is None
