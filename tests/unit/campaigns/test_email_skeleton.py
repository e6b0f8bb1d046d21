"""Skeletons: whatever the body and values, the recipient gets exactly their own body."""

from __future__ import annotations

import html

from hypothesis import given, settings
from hypothesis import strategies as st

from services.campaigns.channels.email import (
    LocalOutboxSender,
    OutgoingEmail,
    _pack,
    _skeletonise,
    list_unsubscribe_headers,
)

TAGS = ["-ww_unsub-", "-ww_link_0-", "-ww_link_1-", "-ww_name-"]
pieces = st.text(alphabet="ab-w_<>&'\" ", max_size=12)
values = st.text(alphabet="abAB01-_w<>&'\"/:.", min_size=0, max_size=14)


def apply(skeleton: str | None, subs: dict[str, str]) -> str | None:
    """What SendGrid does: each tag replaced by its value (here in dict order)."""
    if skeleton is None:
        return None
    for tag, value in subs.items():
        skeleton = skeleton.replace(tag, value)
    return skeleton


@st.composite
def emails(draw: st.DrawFn) -> OutgoingEmail:
    subs = {tag: draw(values) for tag in draw(st.lists(st.sampled_from(TAGS), unique=True))}
    chunks = draw(st.lists(st.tuples(pieces, st.sampled_from([None, *subs])), max_size=8))
    text = "".join(p + (subs[t] if t else "") for p, t in chunks)
    body = "".join(p + (html.escape(subs[t]) if t else "") for p, t in chunks)
    return OutgoingEmail(
        "s", "a@example.net", None, draw(pieces), body or None, text, substitutions=subs
    )


@settings(max_examples=400, deadline=None)
@given(emails())
def test_skeleton_reproduces_the_exact_body(email: OutgoingEmail) -> None:
    prepared = _skeletonise(email)
    html_skel, text_skel, _reply_to = prepared.key
    assert apply(html_skel, prepared.substitutions) == email.html
    assert apply(text_skel, prepared.substitutions) == email.text
    assert apply(email.subject, prepared.substitutions) == email.subject
    # and in reverse order too: the result must not depend on SendGrid's order
    reverse = dict(reversed(list(prepared.substitutions.items())))
    assert apply(html_skel, reverse) == email.html
    assert apply(text_skel, reverse) == email.text


def make(i: int, name: str = "Person") -> OutgoingEmail:
    link = f"https://w.example.org/r/t{i:04d}"
    return OutgoingEmail(
        f"s{i}",
        f"p{i}@example.net",
        None,
        "Hi",
        f"<p>{html.escape(name)} <a href='{link}'>x</a></p>",
        f"{name} {link}",
        headers=list_unsubscribe_headers(link),
        substitutions={"-ww_link_0-": link, "-ww_name-": name},
    )


def test_same_template_different_links_share_a_skeleton() -> None:
    chunks = _pack([_skeletonise(make(i)) for i in range(2500)])
    assert [len(c) for c in chunks] == [1000, 1000, 500]


def test_oversized_substitutions_go_alone() -> None:
    email = make(1, name="N" * 11_000)
    prepared = _skeletonise(email)
    assert prepared.substitutions == {}
    assert prepared.key == (email.html, email.text, None)


def test_local_outbox_keeps_exact_messages() -> None:
    class Store:
        def __init__(self) -> None:
            self.kept: list[OutgoingEmail] = []

        def add(self, emails: list[OutgoingEmail]) -> None:
            self.kept.extend(emails)

    store = Store()
    emails = [make(1), make(2)]
    results = LocalOutboxSender(store).send(emails)
    assert store.kept == emails
    assert [(r.message_id, r.status) for r in results] == [
        ("local-s1", "sent"),
        ("local-s2", "sent"),
    ]


def test_overlapping_tags_in_the_skeleton_fall_back_to_the_exact_body() -> None:
    # "-ww_a-" followed by "ww_b-" would read as "-ww_b-" too if applied in another order
    email = OutgoingEmail(
        "s",
        "a@example.net",
        None,
        "Hi",
        None,
        "VALUEww_b- and BVALUE",
        substitutions={"-ww_a-": "VALUE", "-ww_b-": "BVALUE"},
    )
    prepared = _skeletonise(email)
    assert prepared.substitutions == {}
    assert prepared.key == (None, email.text, None)
