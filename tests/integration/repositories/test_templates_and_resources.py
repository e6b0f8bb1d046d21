"""The contracts of :class:`services.ports.TemplateRepository` and
:class:`services.ports.ResourceRepository` (SQL on SQLite and PostgreSQL, and the fake):
what a new campaign's rules read (services/service_layer/handlers.create_campaign)."""

from __future__ import annotations

from services.db.models import Resource, Template
from tests.integration.repositories.conftest import Backend


def test_a_stored_template_is_found_by_its_id(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.templates.add(Template(id="t-post", name="Post", channel="social", text="Hello"))
        uow.commit()
    with backend.uow() as uow:
        template = uow.templates.get("t-post")
        assert template is not None and (template.channel, template.text) == ("social", "Hello")
        assert uow.templates.get("t-none") is None


def test_known_resources_are_those_stored_and_committed(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.resources.add(
            Resource(id="diet", title="Diet", url="https://example.org/d", kind="web")
        )
        uow.commit()
    with backend.uow() as uow:
        uow.resources.add(
            Resource(id="sleep", title="Sleep", url="https://example.org/s", kind="web")
        )
    with backend.uow() as uow:
        assert uow.resources.known(["diet", "sleep", "walks"]) == {"diet"}
        assert uow.resources.known([]) == set()
