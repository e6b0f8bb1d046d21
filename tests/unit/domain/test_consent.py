"""Consent states and who may change them (services/domain/consent.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.domain.consent import Consent, group_consent, may_email, staff_may_set
from services.domain.unsubscribe_groups import blocked_reason

CONSENTS = st.sampled_from(list(Consent))


def test_the_values_are_the_strings_stored_and_accepted():
    assert [c.value for c in Consent] == ["confirmed", "unconfirmed", "unsubscribed"]
    assert Consent.UNSUBSCRIBED == "unsubscribed"


@given(st.none() | CONSENTS, CONSENTS)
def test_staff_set_anything_except_over_an_unsubscribe(current, requested):
    allowed = staff_may_set(current, requested)
    if current == Consent.UNSUBSCRIBED:
        assert allowed == (requested if requested == Consent.UNSUBSCRIBED else None)
    else:
        assert allowed == requested


def test_only_the_person_undoes_an_unsubscribe():
    assert staff_may_set("unsubscribed", "confirmed") is None
    assert staff_may_set("unsubscribed", "unconfirmed") is None
    assert staff_may_set("unsubscribed", None) is None
    assert staff_may_set("confirmed", "unsubscribed") == "unsubscribed"
    assert staff_may_set(None, "confirmed") == "confirmed"


@given(st.none() | CONSENTS | st.text(max_size=12))
def test_only_a_confirmed_contact_is_emailed(consent):
    assert may_email(consent) is (consent == "confirmed")
    reason = blocked_reason("a@example.org", consent, None, None)
    assert (reason is None) is may_email(consent)
    if reason is not None:
        assert reason == f"consent: {consent}"


def test_a_group_choice_records_the_persons_consent_for_that_group():
    assert group_consent(True) is Consent.UNSUBSCRIBED
    assert group_consent(False) is Consent.CONFIRMED
