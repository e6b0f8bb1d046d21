"""Social post rules (services/domain/social.py) and the webhook signature, without I/O."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.campaigns.publishers import sign, verify_signature
from services.domain.social import (
    LINK_IN_BIO,
    PLATFORMS,
    PostProblem,
    campaign_platforms,
    find_links,
    problem,
    shape_for_platform,
    with_utm,
    x_length,
)

LONG_LINK = (
    "https://network.example.org/resources/diet-tips-for-families?lang=en&utm_content=" + "x" * 80
)


def test_x_counts_every_link_as_23_whatever_its_length():
    assert x_length("https://a.io") == 23
    assert x_length(LONG_LINK) == 23
    assert x_length(f"Read {LONG_LINK} now") == len("Read ") + 23 + len(" now")
    assert x_length("Two: https://a.io/1, https://b.io/2.") == len("Two: ") + 23 + 2 + 23 + 1


def test_x_weighs_cjk_and_emoji_double():
    assert x_length("abc") == 3
    assert x_length("日本語") == 6
    assert x_length("é") == 1  # Latin-1 supplement is light
    assert x_length("\U0001f44d") == 2
    assert x_length("\U0001f44d\U0001f3fd") == 2  # skin tone belongs to the emoji


def test_x_limit_is_280_with_links_counted_23():
    text = "a" * 256 + " " + LONG_LINK  # 256 + 1 + 23 = 280
    assert shape_for_platform("x", text).text == text
    with pytest.raises(
        PostProblem, match=r"x: the X post is 281 characters, each link counted as 23; X allows 280"
    ):
        shape_for_platform("x", "a" + text)


def test_other_platform_limits_and_empty_posts():
    assert problem("linkedin", "a" * 3000) is None
    assert "LinkedIn allows 3000" in (problem("linkedin", "a" * 3001) or "")
    assert problem("facebook", "a" * 5000) is None
    assert "Instagram allows 2200" in (problem("instagram", "a" * 2201) or "")
    assert "hashtags" in (problem("instagram", " ".join(f"#t{i}" for i in range(31))) or "")
    assert "renders empty" in (problem("x", "  \n") or "")
    assert "unknown platform" in (problem("myspace", "hi") or "")


def test_instagram_moves_links_to_the_bio():
    shaped = shape_for_platform(
        "instagram", "Diet tips: https://w.example/r/abc.\nMore: https://w.example/r/def"
    )
    assert shaped.text == f"Diet tips: {LINK_IN_BIO}.\nMore: {LINK_IN_BIO}"
    assert shaped.bio_links == ("https://w.example/r/abc", "https://w.example/r/def")
    assert shaped.inline_links == ()
    said = shape_for_platform("instagram", "New guide, link in bio! https://w.example/r/abc")
    assert said.text == "New guide, link in bio!" and said.bio_links == ("https://w.example/r/abc",)


def test_other_platforms_keep_links_inline():
    shaped = shape_for_platform("linkedin", "Read https://w.example/r/abc, then share.")
    assert shaped.inline_links == ("https://w.example/r/abc",) and shaped.bio_links == ()
    assert find_links("(see https://w.example/x?a=1)") == ["https://w.example/x?a=1"]


def test_utm_parameters_are_set_and_other_parameters_kept():
    url = with_utm("https://network.example.org/diet?topic=food&utm_source=old#top", "x", "cmp1")
    parts = urlsplit(url)
    assert parts.fragment == "top"
    assert parse_qs(parts.query) == {
        "topic": ["food"],
        "utm_source": ["x"],
        "utm_medium": ["social"],
        "utm_campaign": ["cmp1"],
    }


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=300))
def test_x_length_is_never_below_the_light_length_of_plain_text(text):
    if not find_links(text) and not any(
        0x1F3FB <= ord(c) <= 0x1F3FF or ord(c) in (0x200D, 0xFE0E, 0xFE0F, 0x20E3) for c in text
    ):
        import unicodedata

        assert x_length(text) >= len(unicodedata.normalize("NFC", text))


def test_webhook_signature_round_trip_and_tampering():
    secret, body, ts = b"s3cret", b'{"post":{"id":"p1"}}', str(int(time.time()))
    signature = "sha256=" + sign(secret, ts, body)
    assert verify_signature(secret, ts, body, signature)
    assert not verify_signature(secret, ts, body + b" ", signature)
    assert not verify_signature(b"other", ts, body, signature)
    assert not verify_signature(
        secret, str(int(ts) - 1000), body, "sha256=" + sign(secret, str(int(ts) - 1000), body)
    )
    assert not verify_signature(secret, "not-a-number", body, signature)


def test_deliveries_back_off_then_give_up_and_stop_once_delivered():
    from datetime import UTC, datetime, timedelta

    from services.domain.social import MAX_ATTEMPTS, delivery_due, next_delivery

    now = datetime(2024, 3, 1, tzinfo=UTC)
    assert delivery_due({}, now)
    record = next_delivery({}, False, True, "HTTP 503", now)
    assert not record["final"] and not delivery_due(record, now + timedelta(seconds=29))
    assert delivery_due(record, now + timedelta(seconds=30))
    record = next_delivery(record, False, True, "HTTP 503", now)
    assert record["next_at"] == (now + timedelta(seconds=60)).isoformat()
    for _ in range(MAX_ATTEMPTS - 2):
        record = next_delivery(record, False, True, "HTTP 503", now)
    assert (
        record["final"] and not record["ok"] and not delivery_due(record, now + timedelta(days=1))
    )
    assert next_delivery({}, False, False, "HTTP 410", now)["final"]
    done = next_delivery({}, True, True, "HTTP 204", now)
    assert done["ok"] and not delivery_due(done, now)


def test_a_new_campaign_posts_to_the_chosen_platforms_else_all_when_social():
    assert campaign_platforms("social", None) == ["x", "linkedin", "facebook", "instagram"]
    assert campaign_platforms("social", []) == list(PLATFORMS)
    assert campaign_platforms("social", ["linkedin"]) == ["linkedin"]
    assert campaign_platforms("email", None) == [] == campaign_platforms("toolkit", [])
    assert campaign_platforms("email", ["x"]) == ["x"]  # as given (the API refuses nothing here)
