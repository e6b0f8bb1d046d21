"""The contract of :class:`services.ports.ContactRepository` (SQL on SQLite and
PostgreSQL, and the fake)."""

from __future__ import annotations

from services.db.models import Contact
from services.domain.consent import Consent
from tests.integration.repositories.conftest import Backend


def test_a_contact_is_found_by_external_id_with_unconfirmed_consent(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.contacts.add(Contact(external_id="fam-1", pseudonym="p1", email="a@example.org"))
        uow.contacts.add(Contact(external_id="fam-2", pseudonym="p2"))
        uow.commit()
    with backend.uow() as uow:
        one, two = (
            uow.contacts.get_by_external_id("fam-1"),
            uow.contacts.get_by_external_id("fam-2"),
        )
        assert one is not None and two is not None and one.id != two.id
        assert (one.pseudonym, one.email, one.email_consent) == (
            "p1",
            "a@example.org",
            "unconfirmed",
        )
        assert uow.contacts.get_by_external_id("fam-3") is None


def test_consent_changes_are_recorded_once_each_and_only_on_commit(backend: Backend) -> None:
    with backend.uow() as uow:
        uow.contacts.add(Contact(external_id="fam-1", pseudonym="p1"))
        uow.commit()
    with backend.uow() as uow:
        contact = uow.contacts.get_by_external_id("fam-1")
        assert contact is not None
        assert uow.contacts.set_consent(contact, Consent.CONFIRMED, "import")
        # never committed
    with backend.uow() as uow:
        contact = uow.contacts.get_by_external_id("fam-1")
        assert contact is not None and contact.email_consent == Consent.UNCONFIRMED
        assert uow.contacts.consent_history(contact) == []
        assert uow.contacts.set_consent(contact, Consent.CONFIRMED, "api")
        assert not uow.contacts.set_consent(contact, Consent.CONFIRMED, "api")
        assert uow.contacts.set_consent(contact, Consent.UNSUBSCRIBED, "one-click")
        uow.commit()
    with backend.uow() as uow:
        contact = uow.contacts.get_by_external_id("fam-1")
        assert contact is not None and contact.email_consent == Consent.UNSUBSCRIBED
        assert uow.contacts.consent_history(contact) == [
            ("confirmed", "api"),
            ("unsubscribed", "one-click"),
        ]
