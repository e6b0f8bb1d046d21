import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain import is_pseudonym, messenger_ref, pseudonymise, visitor_ref


def test_known_value() -> None:
    expected = "p" + hmac.new(b"k", b"ext-1", hashlib.sha256).hexdigest()[:32]
    assert pseudonymise(b"k", "ext-1") == expected
    assert len(expected) == 33


def test_visitors_are_pseudonymised_like_contacts() -> None:
    ref = visitor_ref("abc123")
    assert ref == "v:abc123"
    assert is_pseudonym(pseudonymise(b"k", ref))
    assert pseudonymise(b"k", ref) != pseudonymise(b"k", "abc123")


def test_a_messenger_is_a_person_of_their_own() -> None:
    ref = messenger_ref("m1")
    assert ref == "messenger:m1"
    assert pseudonymise(b"k", ref) not in {pseudonymise(b"k", r) for r in ("m1", visitor_ref("m1"))}


@given(st.binary(min_size=1, max_size=64), st.text(min_size=1, max_size=80))
def test_stable_well_formed_and_secret_dependent(secret: bytes, ref: str) -> None:
    first = pseudonymise(secret, ref)
    assert first == pseudonymise(secret, ref)
    assert is_pseudonym(first)
    assert first != pseudonymise(secret + b"x", ref)


@pytest.mark.parametrize(
    "value", ["", "p", "p" + "0" * 31, "p" + "0" * 33, "P" + "0" * 32, "p" + "G" * 32, None, 7]
)
def test_is_pseudonym_refuses(value: object) -> None:
    assert not is_pseudonym(value)


def test_empty_inputs_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        pseudonymise(b"", "x")
    with pytest.raises(ValueError, match="person_ref"):
        pseudonymise(b"k", "")
    with pytest.raises(ValueError, match="ww_vid"):
        visitor_ref("")
    with pytest.raises(ValueError, match="messenger_id"):
        messenger_ref("")
